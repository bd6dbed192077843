"""The zipapp: reproducible bytes, a content-addressed name, and no rebuild when nothing changed."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import node_app
from node_app import build


def test_building_twice_gives_identical_bytes(tmp_path: Path) -> None:
    first = build.build_package(tmp_path / "one")
    second = build.build_package(tmp_path / "two")
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()


def test_name_carries_version_and_content_hash(artifact: Path) -> None:
    match = re.fullmatch(rf"{node_app.ARTIFACT_PREFIX}-(.+)-([0-9a-f]{{12}})\.pyz", artifact.name)
    assert match is not None
    assert match.group(1) == node_app.__version__
    assert match.group(2) == hashlib.sha256(artifact.read_bytes()).hexdigest()[:12]
    assert build.artifact_name() == artifact.name


def test_an_existing_artifact_is_returned_untouched(tmp_path: Path) -> None:
    path = build.build_package(tmp_path)
    before = path.stat()
    assert build.build_package(tmp_path) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_changed_source_gives_a_new_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = build.build_package(tmp_path / "out")
    sources = tmp_path / "node_app"
    shutil.copytree(build.PACKAGE_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    with (sources / "output.py").open("a", encoding="utf-8") as file:
        file.write("\n# changed\n")
    monkeypatch.setattr(build, "PACKAGE_DIR", sources)
    changed = build.build_package(tmp_path / "out")
    assert changed != original
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([original.name, changed.name])


def test_archive_layout_is_fixed(artifact: Path) -> None:
    content = artifact.read_bytes()
    assert content.startswith(b"#!/usr/bin/env python3\n")
    assert artifact.stat().st_mode & 0o777 == 0o755
    with zipfile.ZipFile(artifact) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert "__main__.py" in names
    assert "node_app/cli.py" in names
    assert "node_app/build.py" not in names
    assert all(name == "__main__.py" or name.startswith("node_app/") for name in names)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_STORED


def test_build_command_prints_the_artifact_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "node_app.build", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    printed = Path(result.stdout.strip())
    assert printed.parent == tmp_path
    assert printed.name == build.artifact_name()
    assert printed.is_file()


def test_artifact_runs_directly_through_its_shebang(artifact: Path, tmp_path: Path) -> None:
    result = subprocess.run([str(artifact), "--version"], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"node_app {node_app.__version__}"
