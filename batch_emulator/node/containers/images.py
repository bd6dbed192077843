"""Container images on the node: present already, or pulled with the registry credentials Batch was given.

No registry needs to be reachable for images that are present: they are found with ``image exists``
(podman) or ``image inspect`` (docker) and never pulled again. Credentials go to the client in a
temporary auth file (podman ``--authfile``, docker ``DOCKER_CONFIG``, and ``REGISTRY_AUTH_FILE`` for a podman
behind a ``docker`` command), never on a command line or in a log.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from batch_emulator.node.containers.runtime import ContainerRuntime
from batch_emulator.node.containers.spec import RegistryCredential
from batch_emulator.node.failures import failure_info

PULL_TIMEOUT_SECONDS = 900.0
INSPECT_TIMEOUT_SECONDS = 60.0
DOCKER_HUB = "docker.io"
INVALID_IMAGE_CODE = "ContainerInvalidImage"
INVALID_IMAGE_MESSAGE = "One or more container images specified are invalid"

_present: set[tuple[str, str]] = set()  # (client binary, image) known to be on this machine
_present_lock = threading.Lock()


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker's rule: a first part with '.' or ':', or localhost).

    Args:
        image: e.g. ``myregistry.azurecr.io/app:1`` or ``ubuntu:22.04``.

    Returns:
        The registry host, ``docker.io`` when the reference names none.
    """
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def _server_host(server: str) -> str:
    host = server.split("://", 1)[-1].strip("/").split("/", 1)[0]
    return host or DOCKER_HUB


def credential_for(image: str, registries: Iterable[RegistryCredential]) -> RegistryCredential | None:
    """The first credential whose server is the image's registry.

    Args:
        image: The image reference.
        registries: The task's registry first, then the pool's.

    Returns:
        The matching credential with a username, or None.
    """
    host = registry_of(image)
    aliases = {host, "index.docker.io", "registry-1.docker.io"} if host == DOCKER_HUB else {host}
    for registry in registries:
        if registry.username and _server_host(registry.server) in aliases:
            return registry
    return None


def _auth_config(runtime: ContainerRuntime, credential: RegistryCredential) -> dict[str, Any]:
    token = base64.b64encode(f"{credential.username}:{credential.password or ''}".encode()).decode()
    server = _server_host(credential.server)
    if runtime.name == "docker" and server == DOCKER_HUB:
        server = "https://index.docker.io/v1/"
    return {"auths": {server: {"auth": token}}}


def image_present(runtime: ContainerRuntime, image: str) -> bool:
    """Whether the image is in the runtime's local store (cached once seen).

    Args:
        runtime: The container runtime.
        image: The image reference.

    Returns:
        True when present.
    """
    key = (runtime.binary, image)
    if key in _present:
        return True
    args = ("image", "exists", image) if runtime.name == "podman" else ("image", "inspect", "--format", "x", image)
    try:
        found = runtime.call(*args, timeout=INSPECT_TIMEOUT_SECONDS).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    if found:
        with _present_lock:
            _present.add(key)
    return found


def forget_image(runtime: ContainerRuntime, image: str) -> None:
    """Drop an image from the cache (it was removed from the store, e.g. by a test)."""
    with _present_lock:
        _present.discard((runtime.binary, image))


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def pull_image(runtime: ContainerRuntime, image: str, registries: Iterable[RegistryCredential]) -> str | None:
    """Make an image present: nothing to do if it is, else pull it with the matching credentials.

    Args:
        runtime: The container runtime.
        image: The image reference.
        registries: Credentials to choose from (see :func:`credential_for`).

    Returns:
        None on success, else the client's error (one line, without credentials).
    """
    if image_present(runtime, image):
        return None
    credential = credential_for(image, registries)
    with tempfile.TemporaryDirectory(prefix="batch-pull-") as scratch:
        args = ["pull"]
        env: dict[str, str] = {}
        if credential is not None:
            auth = _auth_config(runtime, credential)
            auth_file = Path(scratch) / "config.json"
            auth_file.write_text(json.dumps(auth), "utf-8")
            auth_file.chmod(0o600)
            if runtime.name == "podman":
                args += ["--authfile", str(auth_file)]
            else:  # Docker reads $DOCKER_CONFIG/config.json, a podman behind `docker` REGISTRY_AUTH_FILE
                env = {"DOCKER_CONFIG": scratch, "REGISTRY_AUTH_FILE": str(auth_file)}
        try:
            pulled = runtime.call(*args, image, timeout=PULL_TIMEOUT_SECONDS, extra_env=env)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{runtime.name} pull failed: {error}"
    if pulled.returncode != 0:
        return _last_error_line(pulled.stderr)
    with _present_lock:
        _present.add((runtime.binary, image))
    return None


def image_failure(image: str, message: str) -> dict[str, Any]:
    """The task ``failureInfo`` of an image that could not be pulled (as Batch reports it)."""
    return failure_info("usererror", INVALID_IMAGE_CODE, INVALID_IMAGE_MESSAGE, ContainerImage=image, Message=message)


def image_node_error(image: str, message: str) -> dict[str, Any]:
    """The node ``errors[]`` entry of a pool image that could not be pulled (the node becomes unusable)."""
    return {
        "code": INVALID_IMAGE_CODE,
        "message": INVALID_IMAGE_MESSAGE,
        "errorDetails": [{"name": "ContainerImage", "value": image}, {"name": "Message", "value": message}],
    }
