"""The exception hierarchy users see.

Every error that batchpipe raises on purpose derives from :class:`BatchpipeError` and carries a one-line
message that says what to fix. The CLI prints that line (no traceback) and exits with ``exit_code``.
"""

from __future__ import annotations


class BatchpipeError(Exception):
    """Base class: a failure explained in one line."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigurationError(BatchpipeError):
    """A setting or command-line value is invalid or missing."""

    exit_code = 2


class InputError(BatchpipeError):
    """The input files cannot be processed as given."""

    exit_code = 2


class ServiceStartError(BatchpipeError):
    """A local service (Azurite, the local Batch service, Prefect) did not start."""

    exit_code = 3


class ServiceDied(BatchpipeError):
    """A local service the run was using (Azurite, the local Batch service) exited under it."""

    exit_code = 3


class StateDirBusy(BatchpipeError):
    """Another batchpipe process owns the state directory (its services, its job)."""

    exit_code = 3


class CloudError(BatchpipeError):
    """Azure Batch or Azure Storage refused an operation with a permanent error."""

    exit_code = 4


class PipelineFailed(BatchpipeError):
    """The pipeline ran but did not produce every output."""

    exit_code = 5


class OutputWriteError(PipelineFailed):
    """An output could not be written to the output directory (not writable, disk full)."""
