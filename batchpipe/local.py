"""The embedded default: Azurite and the local Batch service, started for a run and stopped after it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from batchpipe.services import AzuriteInfo, running, start_azurite, start_batch_emulator


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local services listen and the development credentials they accept (public, not secrets)."""

    storage: AzuriteInfo
    batch_url: str
    batch_account_name: str
    batch_account_key: str

    def environment(self) -> dict[str, str]:
        """The ``BATCHPIPE_*`` variables that point the settings at these services."""
        return {
            "BATCHPIPE_TARGET": "local",
            "BATCHPIPE_BATCH_ENDPOINT": self.batch_url,
            "BATCHPIPE_BATCH_ACCOUNT_NAME": self.batch_account_name,
            "BATCHPIPE_BATCH_ACCOUNT_KEY": self.batch_account_key,
            "BATCHPIPE_STORAGE_CONNECTION_STRING": self.storage.connection_string,
        }


@contextlib.contextmanager
def local_stack(state_dir: Path, *, faults: str | None = None) -> Iterator[LocalEndpoints]:
    """Start Azurite and the local Batch service with their state under ``state_dir``; stop both on exit.

    State survives between runs (same directory), so a rerun finds its pool, job and uploads again.

    Args:
        state_dir: parent directory of ``azurite/`` and ``batch/``.
        faults: fault-injection spec for the local Batch service (tests).

    Yields:
        The endpoints and credentials.

    Raises:
        ServiceStartError: a service did not start (the other one is stopped).
    """
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    azurite = start_azurite(state_dir / "azurite")
    with running(azurite):
        emulator = start_batch_emulator(state_dir / "batch", faults=faults)
        with running(emulator):
            yield LocalEndpoints(
                storage=AzuriteInfo(blob_endpoint=azurite.url, location=state_dir / "azurite"),
                batch_url=emulator.url,
                batch_account_name=DEFAULT_ACCOUNT_NAME,
                batch_account_key=DEFAULT_ACCOUNT_KEY,
            )


@contextlib.contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore the previous values."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
