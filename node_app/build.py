"""Build the node application as one reproducible zipapp.

The artifact is ``batchpipe-node-app-<version>-<sha256[:12]>.pyz``: a ``#!/usr/bin/env python3`` line followed by
a zip of the package's runtime modules (everything in ``node_app/`` but this build module) and a small entry point.
Entries are sorted, stored uncompressed (no dependence on the zlib version), dated 1980-01-01 and have mode 0644,
so the same sources always give the same bytes and the same name; a changed source gives a new name.

Command line: ``python -m node_app.build --out DIR`` prints the artifact's path.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from node_app import ARTIFACT_PREFIX, __version__

PACKAGE_DIR = Path(__file__).resolve().parent
SHEBANG = b"#!/usr/bin/env python3\n"
_EXCLUDED_MODULES = frozenset({"build.py"})
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o100644  # regular file, rw-r--r--
_UNIX = 3

# Runs first inside the zipapp. Kept to syntax every Python can parse, so an old interpreter gets a clear message
# (exit code 10, ExitCode.UNSUPPORTED_PYTHON) instead of a SyntaxError from the package.
_ENTRY_POINT = b'''\
"""Entry point of the batchpipe node application zipapp."""
import sys

if sys.version_info < (3, 8):
    sys.stderr.write("node_app: error: Python 3.8 or newer is required, this is %s\\n" % sys.version.split()[0])
    sys.exit(10)

from node_app.cli import main

sys.exit(main())
'''


def runtime_sources() -> list[tuple[str, bytes]]:
    """List the files that go into the artifact.

    Returns:
        ``(name inside the zip, content)`` pairs, sorted by name.
    """
    files = [("__main__.py", _ENTRY_POINT)]
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        if path.name not in _EXCLUDED_MODULES:
            files.append((f"node_app/{path.name}", path.read_bytes()))
    return sorted(files)


def artifact_bytes() -> bytes:
    """Build the artifact in memory.

    Returns:
        the ``.pyz`` content; identical for identical sources.
    """
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, content in runtime_sources():
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.create_system = _UNIX
            info.external_attr = _FILE_MODE << 16
            info.compress_type = zipfile.ZIP_STORED
            archive.writestr(info, content)
    return buffer.getvalue()


def artifact_name(content: bytes | None = None) -> str:
    """Name the artifact after its version and content hash, without writing anything.

    Args:
        content: the artifact's bytes; built in memory when None.

    Returns:
        ``batchpipe-node-app-<version>-<sha256[:12]>.pyz``.
    """
    data = artifact_bytes() if content is None else content
    return f"{ARTIFACT_PREFIX}-{__version__}-{hashlib.sha256(data).hexdigest()[:12]}.pyz"


def build_package(dest_dir: Path) -> Path:
    """Write the artifact into ``dest_dir`` unless a file of the same name (the same content) is already there.

    Args:
        dest_dir: the output directory; created if missing.

    Returns:
        the artifact's path.

    Raises:
        OSError: the directory or file cannot be written.
    """
    content = artifact_bytes()
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / artifact_name(content)
    if target.is_file():
        return target
    # Write under a temporary name and rename, so a concurrent reader never sees half a file.
    handle, temporary = tempfile.mkstemp(dir=dest_dir, prefix=".tmp-", suffix=".pyz")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.chmod(temporary, 0o755)  # noqa: S103 - an executable zipapp, readable by the Batch task user
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """Build the artifact and print its path.

    Args:
        argv: the arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0.
    """
    parser = argparse.ArgumentParser(prog="python -m node_app.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("dist"), help="output directory (default: dist)")
    args = parser.parse_args(argv)
    print(build_package(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
