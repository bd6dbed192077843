"""The client environments of the client tests, built as the Makefile builds them (``make deps``, ``make azure-cli``).

Each is a virtual environment at the repository root pinned by a constraints file; a test that needs one calls
:func:`client_python`, which builds it when its ``.installed`` marker is missing (as the Makefile's rule does)
and returns its interpreter.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Environment:
    """One pinned environment: its directory, constraints file and requirements (as in the Makefile)."""

    directory: str
    constraints: str
    requirements: tuple[str, ...]
    #: Further versions of a package installed with ``--no-deps --target <directory>/<name>-<version>``.
    beside: tuple[str, ...] = field(default=())

    @property
    def path(self) -> Path:
        return ROOT / self.directory


V14 = Environment(".venv-v14", "constraints-v14.txt", ("azure-batch", "azure-mgmt-batch"))
V13 = Environment(
    ".venv-v13", "constraints-v13.txt", ("azure-batch",), beside=("azure-batch==11.0.0", "azure-batch==12.0.0")
)
AZURE_CLI = Environment(".venv-azure-cli", "constraints-azure-cli.txt", ("azure-cli",))


def beside_path(environment: Environment, requirement: str) -> Path:
    """Where a ``beside`` requirement (``name==version``) is installed; put it first on ``PYTHONPATH``."""
    return environment.path / requirement.replace("==", "-")


def client_python(environment: Environment, timeout: float = 600) -> Path:
    """The interpreter of ``environment``, built first when it is missing."""
    python = environment.path / "bin" / "python"
    if not (environment.path / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(environment.path)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        constraints = str(ROOT / environment.constraints)
        subprocess.run([*pip, "-c", constraints, *environment.requirements], check=True, timeout=timeout)
        for requirement in environment.beside:
            target = str(beside_path(environment, requirement))
            subprocess.run([*pip, "--no-deps", "--target", target, requirement], check=True, timeout=timeout)
        (environment.path / ".installed").touch()
    return python
