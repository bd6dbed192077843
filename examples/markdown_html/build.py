"""Build ``md2html.pyz``: the example program and its dependencies (markdown-it-py, mdurl) in one zipapp.

The dependencies are copied from the Python environment that runs this script (``pip install markdown-it-py``
first), so the build needs no network. Run: ``python examples/markdown_html/build.py [OUTPUT.pyz]``.
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPENDENCIES = ("markdown_it", "mdurl")


def _entries() -> list[tuple[str, Path]]:
    entries = [("__main__.py", HERE / "app" / "__main__.py")]
    for name in DEPENDENCIES:
        package = Path(importlib.import_module(name).__file__ or "").parent
        for path in package.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                entries.append((f"{name}/{path.relative_to(package).as_posix()}", path))
    return sorted(entries)


def build(target: Path) -> Path:
    """Write the zipapp to ``target`` and return its path.

    Reproducible (sorted entries, fixed times): the same sources give the same bytes, so a rebuilt application is
    the same blob and the pool that already runs it can be reused.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        handle.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, path in _entries():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes())
    return target


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dist" / "md2html.pyz"))
