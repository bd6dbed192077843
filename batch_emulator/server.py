"""Entry points: :func:`run_forever` (foreground server) and :class:`ThreadedEmulator` (in-process, for tests)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from batch_emulator.app import create_app
from batch_emulator.clock import ServiceClock
from batch_emulator.config import LOOPBACK_HOSTS, EmulatorConfig
from batch_emulator.faults import FaultSpec
from batch_emulator.service import BatchService

__all__ = ["EmulatorConfig", "ThreadedEmulator", "run_forever"]

_log = logging.getLogger("batch_emulator")
STARTUP_TIMEOUT_SECONDS = 30.0
READY_MESSAGE = "Local Azure Batch service listening on {url} (account {account})"


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def check_config(config: EmulatorConfig) -> None:
    """Check a config before anything is bound: loopback unless ``allow_remote``, a parsable fault spec.

    Raises:
        ValueError: the host is not loopback and remote access is not allowed, the fault spec is malformed, or
            the time scale is not a positive number.
    """
    FaultSpec.parse(config.faults)
    ServiceClock(config.time_scale)
    if config.host not in LOOPBACK_HOSTS and not config.allow_remote:
        raise ValueError(
            f"refusing to listen on {config.host!r}: the local Batch service binds loopback only "
            "unless --allow-remote is given (it runs commands sent to it)"
        )


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` (port 0: a free port chosen by the OS).

    Raises:
        OSError: the address is unavailable.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    return sock


def service_url(config: EmulatorConfig, sock: socket.socket) -> str:
    """The URL clients use for a bound socket."""
    port = sock.getsockname()[1]
    host = "127.0.0.1" if config.host in ("0.0.0.0", "", "::") else config.host  # noqa: S104
    if ":" in host:
        host = f"[{host}]"
    return f"{config.scheme}://{host}:{port}"


def _uvicorn_config(app: Any, config: EmulatorConfig) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        ssl_certfile=str(config.certfile) if config.certfile else None,
        ssl_keyfile=str(config.keyfile) if config.keyfile else None,
    )


def _write_ready_file(path: Path, url: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(url + "\n", "utf-8")
    os.replace(temporary, path)


class _Shutdown(Exception):
    """SIGTERM arrived."""


def run_forever(config: EmulatorConfig, *, ready_file: Path | None = None) -> None:
    """Run the service in the foreground until SIGINT or SIGTERM, then stop its processes and save state.

    Prints ``Local Azure Batch service listening on <url> (account <name>)`` once it accepts connections.

    Args:
        config: Settings.
        ready_file: Written with the URL once the service listens (for process launchers using port 0).

    Raises:
        ValueError: a non-loopback host without ``allow_remote``, or a malformed key or fault spec.
        OSError: the port is unavailable.
    """
    check_config(config)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and node transfers' URLs carry SAS signatures.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    temporary = None if config.data_dir else tempfile.TemporaryDirectory(prefix="batch-emulator-")
    data_dir = config.data_dir or Path(temporary.name if temporary else ".")
    sock = bind_socket(config.host, config.port)
    url = service_url(config, sock)
    service = BatchService(config, data_dir)
    service.set_batch_url(url)

    def ready() -> None:
        print(READY_MESSAGE.format(url=url, account=config.account_name), flush=True)
        _log.info("data directory %s", data_dir)
        if ready_file is not None:
            _write_ready_file(ready_file, url)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise _Shutdown

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    service.start()
    try:
        _Server(_uvicorn_config(create_app(service), config), ready).run(sockets=[sock])
    except (KeyboardInterrupt, _Shutdown):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.stop()
        sock.close()
        if temporary is not None:
            temporary.cleanup()
        _log.info("local Batch service stopped")


class ThreadedEmulator:
    """The service on a background thread, for tests: ``with ThreadedEmulator(config) as emulator: ...``.

    With ``port=0`` (the default here) a free port is used; :attr:`url` is the real one.
    """

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        """Prepare (not start) an emulator.

        Args:
            config: Settings; default: loopback, port 0, the well-known account, a temporary data dir.
        """
        self.config = config or EmulatorConfig(port=0)
        self.url = ""
        self.account_name = self.config.account_name
        self.account_key = self.config.account_key
        self.data_dir = self.config.data_dir or Path(tempfile.mkdtemp(prefix="batch-emulator-"))
        self._own_data_dir = self.config.data_dir is None
        self._service: BatchService | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def service(self) -> BatchService:
        """The running service (state, scheduler, faults).

        Raises:
            RuntimeError: not started.
        """
        if self._service is None:
            raise RuntimeError("the emulator is not running")
        return self._service

    def start(self) -> ThreadedEmulator:
        """Start serving; returns once the server accepts connections.

        Returns:
            self.

        Raises:
            RuntimeError: the server did not start in time.
        """
        check_config(self.config)
        self._socket = bind_socket(self.config.host, self.config.port)
        self.url = service_url(self.config, self._socket)
        self._service = BatchService(self.config, self.data_dir)
        self._service.set_batch_url(self.url)
        self._service.start()
        ready = threading.Event()
        self._server = _Server(_uvicorn_config(create_app(self._service), self.config), ready.set)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="batch-emulator-http", daemon=True
        )
        self._thread.start()
        if not ready.wait(STARTUP_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError("the local Batch service did not start")
        return self

    def stop(self) -> None:
        """Stop serving, stop task processes and save state (the data dir is kept unless it was temporary)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        if self._service is not None:
            self._service.stop()
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._service = self._socket = None

    def reset(self) -> None:
        """Forget all pools, jobs and tasks (like ``POST /_emulator/reset``)."""
        self.service.reset()

    def close(self) -> None:
        """Stop, and delete the data dir if the emulator created it."""
        self.stop()
        if self._own_data_dir:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.data_dir)

    def __enter__(self) -> ThreadedEmulator:
        """Start."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop (and delete a temporary data dir)."""
        self.close()
