"""What every benchmark gets: the mode, repetitions, a scratch directory, progress output, a shared Prefect server."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchpipe.prefect_server import PrefectServer

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Offline Prefect for every process a benchmark starts (see docs/dev/helper-rules.md).
PREFECT_OFFLINE = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@dataclass
class Context:
    """The suite's settings and shared resources.

    Attributes:
        quick: small sizes, few repetitions (a smoke run of the whole suite in about a minute).
        repeat: measured repetitions per case when given on the command line (else each benchmark's default).
        workdir: scratch directory, removed at the end unless kept.
    """

    quick: bool
    repeat: int | None
    workdir: Path
    _server: PrefectServer | None = field(default=None, repr=False)
    _server_error: BaseException | None = field(default=None, repr=False)
    _server_thread: threading.Thread | None = field(default=None, repr=False)
    _server_ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)
    _started: float = field(default_factory=time.perf_counter, repr=False)

    def reps(self, quick: int, full: int) -> int:
        """Repetitions for a benchmark: ``--repeat`` if given, else its quick or full default."""
        return self.repeat if self.repeat is not None else (quick if self.quick else full)

    def log(self, message: str) -> None:
        """A progress line on stderr, with the suite's elapsed time."""
        print(f"[{time.perf_counter() - self._started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def scratch(self, name: str) -> Path:
        """A fresh directory under the work directory."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))

    def base_environment(self) -> dict[str, str]:
        """This process's environment without Prefect/batchpipe/Azure variables, plus Prefect's offline switches.

        ``PYTHONDONTWRITEBYTECODE`` is dropped too: a user's machine caches bytecode, so a warm run does not
        recompile the project's modules (~0.5 s per process where the cache is missing).
        """
        drop = ("PREFECT_", "BATCHPIPE_", "AZURE_", "PYTHONDONTWRITEBYTECODE")
        env = {key: value for key, value in os.environ.items() if not key.startswith(drop)}
        return {**env, **PREFECT_OFFLINE}

    def start_prefect_server_in_background(self) -> None:
        """Start the shared Prefect server now, without waiting (quick mode overlaps its start-up with other work).

        The starting thread stays alive until :meth:`close`: services are started with ``PR_SET_PDEATHSIG``, which
        Linux ties to the thread that forked them, so a thread that ended would take the server with it.
        """
        if self._server_thread is not None:
            return

        def start() -> None:
            try:
                self._server = _start_server(self.workdir)
            except BaseException as error:  # noqa: BLE001 - reported to whoever asks for the server
                self._server_error = error
            finally:
                self._server_ready.set()
            self._release.wait()

        self._server_thread = threading.Thread(target=start, name="prefect-server", daemon=True)
        self._server_thread.start()

    def prefect_server(self) -> PrefectServer:
        """The shared local Prefect server (127.0.0.1, temporary PREFECT_HOME), started on first use.

        Raises:
            ServiceStartError: it did not start.
        """
        self.start_prefect_server_in_background()
        self._server_ready.wait()
        if self._server is None:
            assert self._server_error is not None
            raise self._server_error
        return self._server

    def close(self) -> None:
        """Stop the Prefect server if one was started (by its PID), then let its thread end."""
        if self._server_thread is None:
            return
        self._server_ready.wait()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
            self._server = None
        self._release.set()
        self._server_thread.join()
        self._server_thread = None


def _start_server(workdir: Path) -> PrefectServer:
    from batchpipe.prefect_server import start_prefect_server

    home = Path(tempfile.mkdtemp(prefix="prefect-home-", dir=workdir))
    return start_prefect_server(home, timeout=180.0)
