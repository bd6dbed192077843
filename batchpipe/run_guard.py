"""What `batchpipe run` checks before it starts anything, and what it says when it is interrupted.

- :func:`check_output_dir`: the output directory can be written (before a service starts or anything is created).
- :func:`signals_as_interrupt`: SIGTERM ends a run like Ctrl-C does (the flow records Crashed, services stop).
- :func:`left_in_place`: after an interrupt, what exists in Batch and Storage for this run (to name in one line).
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from batchpipe.errors import BatchpipeError, ConfigurationError
from batchpipe.settings import Settings

#: Per-request options for the look-around after an interrupt: a dead or slow service must not hold the exit.
_QUICK: dict[str, Any] = {"retry_total": 0, "connection_timeout": 2, "read_timeout": 3}


class Interrupted(BatchpipeError):
    """Ctrl-C or SIGTERM stopped the run; the message says what was left in place and how to resume."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_output_dir(output: Path) -> None:
    """Check that outputs can be written under ``output`` (created later, when the first output arrives).

    The deepest existing directory on the way is probed with a temporary file (removed at once): permissions,
    read-only filesystems and a file in the way are found now, not after the work is done.

    Args:
        output: the ``--output`` directory (it may not exist yet).

    Raises:
        ConfigurationError: ``output`` or a parent is not a directory, or it cannot be written.
    """
    path = output.expanduser().absolute()
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        what = "--output" if existing == path else f"--output {str(output)!r}: {str(existing)!r}"
        raise ConfigurationError(f"{what} is not a directory: give a directory for the outputs")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".batchpipe-write-check-"):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"cannot write outputs under {str(existing)!r} ({error.strerror}): give a writable --output directory"
        ) from None


@contextlib.contextmanager
def signals_as_interrupt(received: list[int]) -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread for the duration of the block; each signal
    number is appended to ``received``.

    Inside a flow run Prefect installs its own SIGTERM handler (TerminationSignal: the run ends Crashed); it
    records nothing, so a TerminationSignal without a recorded number is a SIGTERM too.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def left_in_place(settings: Settings, job_id: str) -> list[str]:
    """What of this run exists right now: job, pool, containers (each looked up once, quickly; errors skipped).

    Args:
        settings: the run's settings (endpoints of the still running services).
        job_id: the run's job.

    Returns:
        Descriptions such as ``job batchpipe-1234``, ``pool batchpipe-pool``, ``containers application, input``.
    """
    from azure.core.exceptions import ResourceNotFoundError

    from batchpipe.clients import batch_client, blob_service_client

    found: list[str] = []
    with contextlib.suppress(Exception):
        batch = batch_client(settings)
        for kind, read in (("job", batch.get_job), ("pool", batch.get_pool)):
            name = job_id if kind == "job" else settings.pool_id
            with contextlib.suppress(ResourceNotFoundError):
                read(name, **_QUICK)
                found.append(f"{kind} {name}")
    with contextlib.suppress(Exception):
        blobs = blob_service_client(settings)
        names = [settings.application_container, settings.input_container, settings.output_container]
        present = [name for name in names if blobs.get_container_client(name).exists(**_QUICK)]
        if present:
            found.append(f"containers {', '.join(present)}")
    return found


def resume_command() -> str:
    """The command line that was run, to run again (it resumes: the same job, pool and uploads are reused)."""
    program = Path(sys.argv[0]).name if sys.argv else "batchpipe"
    return shlex.join([program, *sys.argv[1:]])


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal number."""
    return 128 + signum


def interrupted_message(signum: int, flow_run: str | None, left: list[str] | None) -> str:
    """One line: which signal, the flow run's final state, what is left in place, how to resume."""
    name = signal.Signals(signum).name
    parts = [f"{name} received"]
    if flow_run:
        parts.append(f"flow run {flow_run}")
    if left is None:
        parts.append("nothing was created yet")
    elif left:
        parts.append(f"left in place: {', '.join(left)}")
    else:
        parts.append("nothing of this run exists in Batch or Storage")
    parts.append(f"local services stopped; resume with: {resume_command()}")
    return "; ".join(parts)
