"""Start and stop the local services: Azurite (Storage) and the local Azure Batch service.

Both bind 127.0.0.1 on a port the OS picks, report the real address once they listen, and are stopped by the PID
we started. Nothing here talks to any address but loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from batchpipe.errors import ServiceDied, ServiceStartError

#: Azurite's documented development account (public, like the emulator's; not a secret).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1
_AZURITE_READY = re.compile(r"successfully listens on (https?://[\d.]+:\d+)")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when its parent dies, so a killed run leaves no service behind.

    Linux ties this to the *thread* that started the child: start services from a thread that lives as long as
    they should (the main thread in the CLI and the fixtures), or they stop when that thread ends.
    """
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _popen_options(extra_env: Mapping[str, str] | None = None) -> dict[str, object]:
    """Options for every service we start: it dies with us (Linux), and it runs in a session of its own.

    Its own session keeps the terminal's Ctrl-C (SIGINT to the foreground process group) away from it: the CLI
    gets the signal alone, lets the flow record its state, then stops the services in order.
    """
    options: dict[str, object] = {"preexec_fn": _die_with_parent} if sys.platform.startswith("linux") else {}
    options["start_new_session"] = True
    if extra_env:
        options["env"] = {**os.environ, **extra_env}
    return options


def spawn_logged(
    command: list[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a service with its output appended to ``log_path``, in a session of its own, dying with us.

    Args:
        command: the command line.
        log_path: where its stdout and stderr go.
        env: its whole environment (default: ours, plus ``extra_env``).
        extra_env: variables added to our environment.
        cwd: its working directory.
    """
    options = _popen_options(extra_env)
    if env is not None:
        options["env"] = dict(env)
    with log_path.open("ab") as log:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, **options
        )


@dataclass
class ServiceProcess:
    """A child process we started, with the URL it reported once it was listening."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log_pump: threading.Thread | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it does not exit in time."""
        if self._stopped:
            return
        self._stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                self.process.wait(timeout)
        if self.log_pump is not None:
            self.log_pump.join(timeout)


@dataclass(frozen=True)
class AzuriteInfo:
    """Where a running Azurite serves blobs, and the development credentials it accepts."""

    blob_endpoint: str
    location: Path | None = None
    account_name: str = AZURITE_ACCOUNT_NAME
    account_key: str = AZURITE_ACCOUNT_KEY

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};"
            f"AccountKey={self.account_key};BlobEndpoint={self.blob_endpoint};"
        )


def azurite_executable() -> Path:
    """Return the pinned Azurite blob launcher from the project's node_modules.

    Raises:
        ServiceStartError: npm packages are not installed.
    """
    path = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        raise ServiceStartError(f"Azurite is not installed ({path} is missing): run `npm ci` in {PROJECT_ROOT}")
    return path


def _wait_for_line(
    process: subprocess.Popen[bytes], log_path: Path, pattern: re.Pattern[str], name: str, timeout: float
) -> tuple[str, threading.Thread]:
    """Tee the child's stdout to ``log_path`` until it exits; return ``pattern``'s group 1 once it matches."""
    assert process.stdout is not None
    found: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        with log_path.open("ab") as log:
            for raw in process.stdout:
                log.write(raw)
                log.flush()
                if not found:
                    match = pattern.search(raw.decode("utf-8", "replace"))
                    if match:
                        found.append(match.group(1))
                        ready.set()
        process.stdout.close()
        ready.set()  # EOF: the process exited

    pump_thread = threading.Thread(target=pump, name=f"{name}-log", daemon=True)
    pump_thread.start()
    if not ready.wait(timeout) or not found:
        process.kill()
        process.wait()
        tail = log_path.read_text("utf-8", "replace")[-500:].strip().replace("\n", " | ")
        raise ServiceStartError(f"{name} did not start within {timeout:.0f}s (log {log_path}): {tail}")
    return found[0], pump_thread


def start_azurite(
    location: Path,
    *,
    port: int = 0,
    extra_args: list[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """Start Azurite's blob service on 127.0.0.1 with a port chosen by the OS (or the one given).

    Args:
        location: Directory for Azurite's data (kept across restarts with the same location).
        port: TCP port; 0 lets the OS choose a free one.
        extra_args: More Azurite flags (e.g. ``--cert``, ``--key``, ``--oauth basic``).
        extra_env: Variables added to Azurite's environment (e.g. ``AZURITE_ACCOUNTS``).
        log_path: Where Azurite's output goes (default: ``<location>/azurite.log``).
        timeout: Seconds to wait for Azurite to listen.

    Returns:
        The running process; ``url`` is the blob endpoint including the account path.

    Raises:
        ServiceStartError: Azurite is missing or did not start in time.
    """
    location = location.resolve()
    location.mkdir(parents=True, exist_ok=True)
    log_path = log_path or location / "azurite.log"
    command = [
        str(azurite_executable()),
        "--disableTelemetry",  # otherwise Azurite calls the Azure IMDS address and ignores SIGTERM
        "--skipApiVersionCheck",  # azure-storage-blob sends a newer x-ms-version than Azurite 3.37 knows
        "--location",
        str(location),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        *(extra_args or []),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=location,
        **_popen_options(extra_env),  # type: ignore[call-overload]
    )
    base, pump = _wait_for_line(process, log_path, _AZURITE_READY, "Azurite", timeout)
    return ServiceProcess("Azurite", process, f"{base}/{AZURITE_ACCOUNT_NAME}", log_path, pump)


def start_batch_emulator(
    data_dir: Path,
    *,
    account_name: str | None = None,
    account_key: str | None = None,
    faults: str | None = None,
    extra_args: list[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> ServiceProcess:
    """Start the local Azure Batch service as a child process on 127.0.0.1 with a port chosen by the OS.

    Args:
        data_dir: Its state directory (SQLite and node directories); reuse it to keep state across restarts.
        account_name: Batch account name (default: the emulator's well-known account).
        account_key: Base64 account key (default: the emulator's well-known key).
        faults: A fault-injection spec (see docs/emulator.md).
        extra_args: More command-line flags for ``python -m batch_emulator``.
        extra_env: Variables added to its environment (e.g. ``SSL_CERT_FILE``, passed on to its tasks).
        log_path: Where its log goes (default: ``<data_dir>/emulator.log``).
        timeout: Seconds to wait for it to listen.

    Returns:
        The running process; ``url`` is the Batch endpoint.

    Raises:
        ServiceStartError: it did not start in time.
    """
    data_dir = data_dir.resolve()  # task processes run in their own working directories
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir / "emulator.log"
    ready_file = data_dir / "emulator.ready"
    ready_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "batch_emulator", "--port", "0", "--data-dir", str(data_dir)]
    command += ["--ready-file", str(ready_file)]
    if account_name:
        command += ["--account", account_name]
    if account_key:
        command += ["--key", account_key]
    if faults:
        command += ["--faults", faults]
    command += extra_args or []
    process = spawn_logged(command, log_path, extra_env=extra_env)
    deadline = time.monotonic() + timeout
    while not ready_file.exists() or not ready_file.read_text().strip():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            tail = log_path.read_text("utf-8", "replace")[-500:].strip().replace("\n", " | ")
            raise ServiceStartError(f"the local Batch service did not start (log {log_path}): {tail}")
        time.sleep(0.02)  # polling a file the child writes once it listens
    return ServiceProcess("local Batch service", process, ready_file.read_text().strip(), log_path)


#: Services this process depends on right now (see :func:`running`), by PID: a run checks them before and after
#: each request, so that a service that died fails the run at once instead of after minutes of retries.
_WATCHED: dict[int, ServiceProcess] = {}
_WATCHED_LOCK = threading.Lock()


def check_services() -> None:
    """Fail if a service this process is using (started in a :func:`running` block) has exited.

    Raises:
        ServiceDied: one line naming the service, how it ended and where its log is.
    """
    with _WATCHED_LOCK:
        services = list(_WATCHED.values())
    for service in services:
        code = service.process.poll()
        if code is not None and not service._stopped:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise ServiceDied(
                f"{service.name} (pid {service.pid}) {how} while the run was using it (log {service.log_path}); "
                "rerun the same command to resume"
            )


@contextlib.contextmanager
def running(*services: ServiceProcess) -> Iterator[tuple[ServiceProcess, ...]]:
    """Watch the given services while the block runs (:func:`check_services`) and stop them on exit, whatever
    happens (errors, Ctrl-C, SIGTERM), the last one first."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    with _WATCHED_LOCK:
        _WATCHED.update({service.pid: service for service in services})
    try:
        yield services
    finally:
        with _WATCHED_LOCK:
            for service in services:
                _WATCHED.pop(service.pid, None)
        for service in reversed(services):
            service.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def prefect_environment(prefect_home: Path) -> dict[str, str]:
    """Environment for any Prefect process we run: offline, no telemetry, a project-local home."""
    return {
        "PREFECT_HOME": str(prefect_home),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def apply_prefect_environment(prefect_home: Path) -> None:
    """Set the offline Prefect environment in this process (before Prefect reads its settings)."""
    for key, value in prefect_environment(prefect_home).items():
        os.environ.setdefault(key, value)
