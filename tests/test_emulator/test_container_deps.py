"""`make container-deps` (.ci/container-deps): finds what the container tests lack."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "container-deps"


def run(path: str) -> str:
    env = {"PATH": path, "CONTAINER_DEPS_DRY_RUN": "1", "HOME": os.environ.get("HOME", "/")}
    done = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_it_names_the_packages_a_machine_lacks(tmp_path: Path) -> None:
    for tool in ("id", "ldd", "apt-get"):  # a PATH with the basics but no podman or runc
        found = subprocess.run(["/bin/sh", "-c", f"command -v {tool}"], capture_output=True, text=True, check=False)
        if found.stdout.strip():
            (tmp_path / tool).symlink_to(found.stdout.strip())
    assert run(str(tmp_path)).startswith("would install: podman runc")
