"""The embedded default: Azurite and the local Batch service, started for a run and stopped after it.

Two modes: ``key`` (the default; shared keys over http) and ``entra`` (local Entra ID mode: both services over
HTTPS with a local CA, Bearer tokens from :class:`~batchpipe.local_identity.LocalDevelopmentCredential`, and
account keys that are random and never handed out, so only Entra ID and user-delegation SAS can work).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from batchpipe.errors import ServiceStartError, StateDirBusy
from batchpipe.services import AzuriteInfo, ServiceProcess, running, start_azurite, start_batch_emulator

LocalAuth = Literal["key", "entra"]


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local services listen and the development credentials they accept (public, not secrets).

    In ``entra`` mode the account keys are random ones nobody is given, and ``ca_file`` is the CA to trust.
    """

    storage: AzuriteInfo
    batch_url: str
    batch_account_name: str
    batch_account_key: str
    auth: LocalAuth = "key"
    ca_file: Path | None = None

    def environment(self) -> dict[str, str]:
        """The ``BATCHPIPE_*`` variables that point the settings at these services.

        In ``entra`` mode: no keys, and ``REQUESTS_CA_BUNDLE``/``SSL_CERT_FILE`` naming the local CA.
        """
        if self.auth == "entra":
            ca_file = str(self.ca_file)
            return {
                "BATCHPIPE_TARGET": "local",
                "BATCHPIPE_LOCAL_AUTH": "entra",
                "BATCHPIPE_BATCH_ENDPOINT": self.batch_url,
                "BATCHPIPE_STORAGE_ACCOUNT_URL": self.storage.blob_endpoint,
                "REQUESTS_CA_BUNDLE": ca_file,
                "SSL_CERT_FILE": ca_file,
            }
        return {
            "BATCHPIPE_TARGET": "local",
            "BATCHPIPE_BATCH_ENDPOINT": self.batch_url,
            "BATCHPIPE_BATCH_ACCOUNT_NAME": self.batch_account_name,
            "BATCHPIPE_BATCH_ACCOUNT_KEY": self.batch_account_key,
            "BATCHPIPE_STORAGE_CONNECTION_STRING": self.storage.connection_string,
        }


@contextlib.contextmanager
def local_stack(state_dir: Path, *, faults: str | None = None, auth: LocalAuth = "key") -> Iterator[LocalEndpoints]:
    """Start Azurite and the local Batch service with their state under ``state_dir``; stop both on exit.

    State survives between runs (same directory), so a rerun finds its pool, job and uploads again.

    Args:
        state_dir: parent directory of ``azurite/`` and ``batch/`` (and ``tls/`` in ``entra`` mode).
        faults: fault-injection spec for the local Batch service (tests).
        auth: ``key`` (shared keys, http) or ``entra`` (local Entra ID mode: HTTPS and Bearer tokens).

    Yields:
        The endpoints and credentials.

    Raises:
        StateDirBusy: another batchpipe process uses ``state_dir`` (see :func:`owned_state_dir`).
        ServiceStartError: a service did not start (the other one is stopped).
        ConfigurationError: ``entra`` mode without ``trustme`` installed.
    """
    with owned_state_dir(state_dir):
        if auth == "entra":
            with _entra_stack(state_dir, faults) as endpoints:
                yield endpoints
        else:
            with _key_stack(state_dir, faults) as endpoints:
                yield endpoints


#: State directories this process owns (see :func:`owned_state_dir`).
_OWNED: set[Path] = set()


@contextlib.contextmanager
def owned_state_dir(state_dir: Path) -> Iterator[None]:
    """Own ``state_dir`` for the block: ``<state_dir>/lock`` is locked (``fcntl.flock``) and holds our PID.

    One process at a time runs services on a state directory: a second one would start a second Azurite and
    Batch service on the same data and run every task twice. The lock goes with the process (also on SIGKILL),
    so a crashed run never blocks the next one.

    Raises:
        StateDirBusy: another process holds it; the message names its PID and what to do.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    key = state_dir.resolve()
    if key in _OWNED:  # this process owns it already (the CLI takes it before it says it starts services)
        yield
        return
    lock_path = state_dir / "lock"
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise StateDirBusy(
                f"state directory {str(state_dir)!r} is in use by another batchpipe process (pid {holder}): "
                "wait for it to finish (the same command then resumes its job), or give another --state-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        _OWNED.add(key)
        try:
            yield
        finally:
            _OWNED.discard(key)
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _key_stack(state_dir: Path, faults: str | None) -> Iterator[LocalEndpoints]:
    from batch_emulator.config import DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_NAME

    azurite = _start_storage(state_dir / "azurite")
    with running(azurite):
        emulator = start_batch_emulator(state_dir / "batch", faults=faults)
        with running(emulator):
            yield LocalEndpoints(
                storage=AzuriteInfo(blob_endpoint=azurite.url, location=state_dir / "azurite"),
                batch_url=emulator.url,
                batch_account_name=DEFAULT_ACCOUNT_NAME,
                batch_account_key=DEFAULT_ACCOUNT_KEY,
            )


def _start_storage(location: Path, **options: Any) -> ServiceProcess:
    """Azurite on the port this state directory used last time (a new one the first time).

    The SAS URLs a kept pool's start task and a job's tasks carry name Azurite's port, so a rerun of a crashed run
    must serve its blobs on the same port, or every node fails to download. A port now taken by another program
    falls back to a new one.
    """
    port_file = location / "blob-port"
    text = port_file.read_text().strip() if port_file.is_file() else ""
    remembered = int(text) if text.isdigit() else 0
    try:
        azurite = start_azurite(location, port=remembered, **options)
    except ServiceStartError:
        if not remembered:
            raise
        azurite = start_azurite(location, **options)
    port_file.write_text(str(urlsplit(azurite.url).port))
    return azurite


def _random_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


@contextlib.contextmanager
def _entra_stack(state_dir: Path, faults: str | None) -> Iterator[LocalEndpoints]:
    from batch_emulator.config import DEFAULT_ACCOUNT_NAME
    from batchpipe.local_identity import ensure_local_tls
    from batchpipe.services import AZURITE_ACCOUNT_NAME

    tls = ensure_local_tls(state_dir)
    storage_key, batch_key = _random_key(), _random_key()
    azurite = _start_storage(
        state_dir / "azurite",
        extra_args=["--cert", str(tls.cert_file), "--key", str(tls.key_file), "--oauth", "basic"],
        extra_env={"AZURITE_ACCOUNTS": f"{AZURITE_ACCOUNT_NAME}:{storage_key}"},
    )
    with running(azurite):
        emulator = start_batch_emulator(
            state_dir / "batch",
            account_key=batch_key,
            faults=faults,
            extra_args=["--cert", str(tls.cert_file), "--key-file", str(tls.key_file), "--allow-bearer"],
            # node transfers and task programs trust the local CA (REQUESTS_CA_BUNDLE wins over SSL_CERT_FILE)
            extra_env={"REQUESTS_CA_BUNDLE": str(tls.ca_file), "SSL_CERT_FILE": str(tls.ca_file)},
        )
        with running(emulator):
            yield LocalEndpoints(
                storage=AzuriteInfo(blob_endpoint=azurite.url, location=state_dir / "azurite", account_key=storage_key),
                batch_url=emulator.url,
                batch_account_name=DEFAULT_ACCOUNT_NAME,
                batch_account_key=batch_key,
                auth="entra",
                ca_file=tls.ca_file,
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
