"""Fixtures for the node application's tests: the built zipapp and a way to run it like a Batch task does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest

from node_app.build import build_package

BATCH_ENV = {
    "AZ_BATCH_NODE_ID": "tvmps_node1",
    "AZ_BATCH_TASK_ID": "topNtask0",
    "AZ_BATCH_JOB_ID": "PythonTutorialJob",
    "AZ_BATCH_POOL_ID": "PythonTutorialPool",
}


def _find_python38() -> str | None:
    """Return a working Python 3.8 interpreter (the oldest the artifact supports), or None."""
    candidates = sorted(str(path) for path in (Path.home() / ".pyenv" / "versions").glob("3.8*/bin/python3.8"))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 8))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


@pytest.fixture(scope="session")
def python38() -> str:
    """A Python 3.8 interpreter; the test is skipped when there is none."""
    found = _find_python38()
    if found is None:
        pytest.skip("no Python 3.8 interpreter found (looked in ~/.pyenv/versions)")
    return found


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zipapp built from the current sources."""
    return build_package(tmp_path_factory.mktemp("artifact"))


@pytest.fixture
def task_env() -> dict[str, str]:
    """An environment like a Batch task's: the AZ_BATCH_* ids, a UTF-8 locale, nothing from the developer's shell."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(BATCH_ENV)
    return env


@pytest.fixture
def run_node_app(
    artifact: Path, task_env: dict[str, str], tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python artifact.pyz <args>`` in ``tmp_path`` (the task's working directory)."""

    def run(
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        cwd: Path = tmp_path,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, str(artifact), *args],
            cwd=cwd,
            env=dict(task_env if env is None else env),
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def expect_error() -> Callable[[subprocess.CompletedProcess[str], int, str], None]:
    """A checker for the bad-input contract: the exit code, one ``node_app: error:`` line, no traceback."""
    return _expect_error


def _expect_error(result: subprocess.CompletedProcess[str], exit_code: int, fragment: str) -> None:
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("node_app: error: ")
    assert fragment in lines[0]
    assert result.stdout == ""
