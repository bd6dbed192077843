"""A tiny local image made from this machine's static busybox, for tests, benchmarks and trying containers.

No registry is needed: a root filesystem holding ``/bin/busybox`` (Debian package ``busybox-static``)
and links for its applets is imported (``podman import``/``docker import``) under a registry-style name.
"""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
from pathlib import Path

from batch_emulator.node.containers.images import image_present
from batch_emulator.node.containers.runtime import ContainerRuntime

IMAGE_NAME = "localhost/batchpipe-test/busybox:1"
BUSYBOX = Path("/bin/busybox")
APPLETS = (
    "sh", "echo", "cat", "sleep", "env", "ls", "touch", "id", "pwd", "test", "true", "false", "mkdir", "printf",
    "grep", "wc", "rm", "stat", "head", "tail", "seq",
)  # fmt: skip
IMPORT_TIMEOUT_SECONDS = 300.0


class BusyboxMissingError(Exception):
    """The static busybox is not installed."""


def _rootfs_tar(directory: Path, busybox: Path) -> Path:
    archive = directory / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return archive


def ensure_busybox_image(runtime: ContainerRuntime, name: str = IMAGE_NAME, busybox: Path = BUSYBOX) -> str:
    """Build the image unless the runtime has it already.

    Args:
        runtime: The container runtime.
        name: The image reference to create.
        busybox: A statically linked busybox.

    Returns:
        ``name``.

    Raises:
        BusyboxMissingError: ``busybox`` does not exist (install ``busybox-static``).
        RuntimeError: The import failed.
    """
    if image_present(runtime, name):
        return name
    if not busybox.is_file():
        raise BusyboxMissingError(f"{busybox} is missing: install it with `apt-get install busybox-static`")
    with tempfile.TemporaryDirectory(prefix="batch-busybox-") as scratch:
        archive = _rootfs_tar(Path(scratch), busybox)
        try:
            done = runtime.call(
                "import", "--change", 'CMD ["/bin/sh"]', str(archive), name, timeout=IMPORT_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"{runtime.name} import failed: {error}") from error
    if done.returncode != 0:
        raise RuntimeError(f"{runtime.name} import failed: {done.stderr.strip()}")
    return name
