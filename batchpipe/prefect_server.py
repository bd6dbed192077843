"""Start and stop a real local Prefect server and process workers, for the stack, tests and benchmarks.

The server binds 127.0.0.1 only, runs offline (no analytics, no telemetry) with its own ``PREFECT_HOME``, and is
ready once ``/api/health`` answers. Everything is stopped by the PID we started; a worker needs two signals.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from batchpipe.errors import ServiceStartError
from batchpipe.services import ServiceProcess, prefect_environment, spawn_logged

#: The port users know the Prefect UI by.
DEFAULT_PREFECT_PORT = 4200

#: Poll intervals for tests and local development: Prefect's defaults (5-60 s) make a local run feel stuck.
FAST_SERVER_SETTINGS: dict[str, str] = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    "PREFECT_SERVER_SERVICES_SCHEDULER_RECENT_DEPLOYMENTS_LOOP_SECONDS": "1",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "5",
}
FAST_CLIENT_SETTINGS: dict[str, str] = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "1",
    "PREFECT_RUNNER_POLL_FREQUENCY": "1",
}


@dataclass
class PrefectServer:
    """A running ``prefect server start`` process and where it serves the API and the UI."""

    service: ServiceProcess
    home: Path
    port: int

    @property
    def pid(self) -> int:
        return self.service.pid

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def client_environment(self) -> dict[str, str]:
        """The variables a Prefect client process (CLI, worker, flow) needs to use this server, offline."""
        return {**prefect_environment(self.home), "PREFECT_API_URL": self.api_url}

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server by its PID (SIGTERM, then SIGKILL after ``timeout``)."""
        self.service.stop(timeout)


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """True if nothing listens on ``127.0.0.1:port`` and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def prefect_executable() -> str:
    """The ``prefect`` command of the Python environment we run in (not whatever is first on PATH)."""
    candidate = Path(sys.executable).with_name("prefect")
    return str(candidate) if candidate.exists() else "prefect"


def _log_tail(log_path: Path, limit: int = 600) -> str:
    if not log_path.exists():
        return ""
    return log_path.read_text("utf-8", "replace")[-limit:].strip().replace("\n", " | ")


def wait_until_healthy(api_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    """Poll ``<api_url>/health`` until the server answers 200.

    Args:
        api_url: the server's API URL (``http://127.0.0.1:<port>/api``).
        process: the server process, so that an early exit fails at once.
        log_path: the server's log, quoted in the error.
        timeout: seconds to wait.

    Raises:
        ServiceStartError: the server exited or did not answer in time.
    """
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise ServiceStartError(
                    f"the Prefect server exited with code {process.returncode} (log {log_path}): {_log_tail(log_path)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{api_url}/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"the Prefect server did not answer within {timeout:.0f}s (log {log_path}): {_log_tail(log_path)}"
                )
            time.sleep(0.2)  # polling the health endpoint, bounded by the deadline


def start_prefect_server(
    home: Path,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> PrefectServer:
    """Start ``prefect server start`` on 127.0.0.1, offline, and wait until ``/api/health`` answers.

    Args:
        home: its ``PREFECT_HOME`` (SQLite database, UI build); reuse it to keep runs and deployments.
        port: the port (default: a free one the OS picks).
        log_path: where its output goes (default: ``<home>/server.log``).
        extra_env: more environment variables for the server (e.g. :data:`FAST_SERVER_SETTINGS`).
        timeout: seconds to wait for health (a fresh database needs ~10 s of migrations).

    Returns:
        The running server.

    Raises:
        ServiceStartError: the port is taken, or the server exited or did not become healthy in time.
    """
    home.mkdir(parents=True, exist_ok=True)
    log_path = log_path or home / "server.log"
    port = port or free_loopback_port()
    if not port_is_free(port):
        raise ServiceStartError(f"port {port} on 127.0.0.1 is in use (another Prefect server?): choose another port")
    with home_lock(home):
        return _start_server_process(home, port, log_path, extra_env, timeout)


def _start_server_process(
    home: Path, port: int, log_path: Path, extra_env: Mapping[str, str] | None, timeout: float
) -> PrefectServer:
    env = {
        **os.environ,
        **prefect_environment(home),
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    # The server is the API: it must not try to reach itself (or anything else) as a client.
    env.pop("PREFECT_API_URL", None)
    command = [prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"]
    process = spawn_logged(command, log_path, env=env)
    server = PrefectServer(ServiceProcess("Prefect server", process, f"http://127.0.0.1:{port}", log_path), home, port)
    try:
        wait_until_healthy(server.api_url, process, log_path, timeout)
    except BaseException:
        server.stop()
        raise
    return server


@contextlib.contextmanager
def home_lock(home: Path, timeout: float = 180.0) -> Iterator[None]:
    """Hold ``<home>/.start.lock`` (``fcntl.flock``) while a server starts on ``home``.

    A server migrates its SQLite database when it starts; two processes migrating the same home at once fail
    (``duplicate column name``). With the lock, the second one starts once the first is healthy (migrated).

    Args:
        home: the ``PREFECT_HOME``.
        timeout: seconds to wait for another process's start.

    Raises:
        ServiceStartError: another process held the lock for longer than ``timeout``.
    """
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".start.lock").open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceStartError(
                        f"another process has been starting a Prefect server on {home} for {timeout:.0f}s"
                    ) from None
                time.sleep(0.1)  # polling a lock another process holds, bounded by the deadline
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class TemporaryPrefectApi:
    """The Prefect API a ``batchpipe run`` starts for itself (when no ``PREFECT_API_URL`` is set).

    The same server Prefect's own temporary one is (uvicorn serving ``prefect.server.api.server:create_app``,
    no UI), but a child we own: it runs in its own session (the terminal's Ctrl-C reaches only the CLI), dies
    with the CLI (``PR_SET_PDEATHSIG``: a SIGKILL of the CLI leaves no server behind) and is stopped by its PID
    after the flow has recorded its final state. It starts in the background while the local services start;
    the home's start lock is held until it answers (its database is migrated).
    """

    def __init__(self, home: Path, *, timeout: float = 300.0) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.port = free_loopback_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self._error: BaseException | None = None
        self._lock = home_lock(home, timeout)
        self._lock.__enter__()  # released by the health thread once the database is migrated
        try:
            self.service = self._spawn(home / "temporary-server.log")
        except BaseException:
            self._lock.__exit__(None, None, None)
            raise
        self._ready = threading.Thread(target=self._wait, args=(timeout,), name="prefect-api-ready", daemon=True)
        self._ready.start()

    def _spawn(self, log_path: Path) -> ServiceProcess:
        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            raise ServiceStartError("prefect is not installed in this environment: run `make deps`")
        env = {
            **os.environ,
            **prefect_environment(self.home),
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        env.pop("PREFECT_API_URL", None)
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(spec.origin).parent.parent)]
        command += ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "error", "--lifespan", "on"]
        process = spawn_logged(command, log_path, env=env)
        return ServiceProcess("Prefect API server", process, self.api_url, log_path)

    def _wait(self, timeout: float) -> None:
        try:
            wait_until_healthy(self.api_url, self.service.process, self.service.log_path, timeout)
        except BaseException as error:  # noqa: BLE001 - reported by wait_ready() in the main thread
            self._error = error
        finally:
            self._lock.__exit__(None, None, None)

    def wait_ready(self) -> str:
        """Block until the API answers; return its URL.

        Raises:
            ServiceStartError: it exited or did not answer in time.
        """
        self._ready.join()
        if self._error is not None:
            raise self._error
        return self.api_url

    def stop(self) -> None:
        """Stop it by its PID (SIGTERM, then SIGKILL): after the flow's last logs have been sent."""
        self.service.stop()


@contextlib.contextmanager
def prefect_server(home: Path, **options: object) -> Iterator[PrefectServer]:
    """Run a Prefect server for the duration of the block (see :func:`start_prefect_server`), then stop it.

    Args:
        home: its ``PREFECT_HOME``.
        **options: passed to :func:`start_prefect_server`.

    Yields:
        The running server.

    Raises:
        ServiceStartError: it did not start.
    """
    server = start_prefect_server(home, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


def start_process_worker(
    pool: str,
    env: Mapping[str, str],
    *,
    name: str = "batchpipe-worker",
    log_path: Path,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> ServiceProcess:
    """Start ``prefect worker start`` for a process work pool and wait until it polls.

    Args:
        pool: the work pool's name (it must exist, created with ``--type process``).
        env: the worker's whole environment; flow runs inherit it (``PREFECT_API_URL``, ``BATCHPIPE_*``, ...).
        name: the worker's name, as the UI shows it.
        log_path: where its output goes.
        cwd: its working directory.
        timeout: seconds to wait for its "started" line.

    Returns:
        The running worker; stop it with :func:`stop_worker`.

    Raises:
        ServiceStartError: it exited or did not start in time.
    """
    command = [prefect_executable(), "worker", "start", "--pool", pool, "--name", name, "--type", "process"]
    process = spawn_logged(command, log_path, env=env, cwd=cwd)
    worker = ServiceProcess(f"Prefect worker {name}", process, "", log_path)
    deadline = time.monotonic() + timeout
    while "started!" not in log_path.read_text("utf-8", "replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(worker)
            raise ServiceStartError(f"the Prefect worker did not start (log {log_path}): {_log_tail(log_path)}")
        time.sleep(0.1)  # polling the log the child writes, bounded by the deadline
    return worker


def descendant_pids(pid: int) -> list[int]:
    """The PIDs of a process's children, grandchildren, ... (Linux ``/proc``; empty elsewhere or once it is gone).

    Args:
        pid: a process we started.

    Returns:
        Its descendants, parents before children.
    """
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        children: list[int] = []
        with contextlib.suppress(OSError):
            for thread in Path(f"/proc/{parent}/task").iterdir():
                children += [int(c) for c in (thread / "children").read_text().split()]
        found += children
        pending += children
    return found


def _signal_pids(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)  # polling /proc for processes that are not our children (we cannot wait() on them)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
    return alive


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def stop_worker(worker: ServiceProcess, grace: float = 5.0) -> None:
    """Stop a worker (or a ``serve`` process) by its PID, and the flow runs it started by theirs.

    The first SIGTERM only stops a worker polling (it waits for its runs); the second one ends it. Flow-run
    processes that are still running then (a paused run, say) are stopped by their PIDs, found under the worker's.

    Args:
        worker: the worker process.
        grace: seconds to wait after each signal.
    """
    process = worker.process
    runs: list[int] = []
    for _ in range(2):
        if process.poll() is not None:
            break
        runs += [pid for pid in descendant_pids(worker.pid) if pid not in runs]
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    worker.stop(grace)  # SIGKILL if it is somehow still there; reaps it either way
    _signal_pids(runs, signal.SIGTERM)
    _signal_pids(_wait_gone(runs, grace), signal.SIGKILL)


def run_prefect_cli(args: list[str], env: Mapping[str, str], *, cwd: Path | None = None, timeout: float = 120.0) -> str:
    """Run one ``prefect`` CLI command without prompts and return its output.

    Args:
        args: the arguments after ``prefect``.
        env: its whole environment (``PREFECT_API_URL`` etc.).
        cwd: its working directory.
        timeout: seconds before it is killed.

    Returns:
        What it printed (stdout and stderr).

    Raises:
        ServiceStartError: it failed or timed out.
    """
    command = [prefect_executable(), "--no-prompt", *args]
    try:
        result = subprocess.run(
            command,
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise ServiceStartError(f"`prefect {' '.join(args)}` did not finish within {timeout:.0f}s") from None
    output = result.stdout + result.stderr
    if result.returncode != 0:
        tail = output[-600:].strip().replace("\n", " | ")
        raise ServiceStartError(f"`prefect {' '.join(args)}` failed with code {result.returncode}: {tail}")
    return output


def create_process_work_pool(name: str, env: Mapping[str, str]) -> None:
    """Create (or update) a ``process`` work pool on the server ``env`` points at.

    Args:
        name: the work pool's name.
        env: the client environment (``PREFECT_API_URL`` etc.).

    Raises:
        ServiceStartError: Prefect refused.
    """
    run_prefect_cli(["work-pool", "create", name, "--type", "process", "--overwrite"], env)


def deploy_project(prefect_file: Path, project_dir: Path, env: Mapping[str, str]) -> str:
    """Create or update every deployment in ``prefect_file`` (``prefect deploy --all``) from ``project_dir``.

    Args:
        prefect_file: the ``prefect.yaml``.
        project_dir: where entrypoints are relative to (and where flow runs will work).
        env: the client environment (``PREFECT_API_URL`` etc.).

    Returns:
        Prefect's report.

    Raises:
        ServiceStartError: Prefect refused (e.g. the work pool does not exist).
    """
    return run_prefect_cli(["deploy", "--all", "--prefect-file", str(prefect_file)], env, cwd=project_dir)
