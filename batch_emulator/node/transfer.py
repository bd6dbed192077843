"""Blob REST transfers with SAS URLs: one shared HTTP client, retries with backoff on transient failures."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from batch_emulator.node.redact import redact_url

# Attempt n+1 waits BACKOFF_SECONDS[n]; a transient failure after the last one is reported.
BACKOFF_SECONDS = (0.1, 0.3, 0.9)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
STORAGE_API_VERSION = "2021-08-06"
_CHUNK = 1 << 20

_client: httpx.Client | None = None
_client_lock = threading.Lock()

_T = TypeVar("_T")

FailureKind = Literal["status", "timeout", "connection", "cancelled", "local"]


@dataclass
class TransferError(Exception):
    """A transfer that failed for good; ``url`` is already redacted."""

    kind: FailureKind
    url: str
    status: int | None = None
    storage_code: str | None = None
    reason: str = ""

    def describe(self) -> str:
        """One line for a failure message, e.g. ``HTTP 403 AuthenticationFailed``.

        Returns:
            The status and the storage error code, or the connection/timeout reason.
        """
        if self.kind == "status":
            return f"HTTP {self.status} {self.storage_code or ''}".rstrip()
        return redact_url(self.reason) or self.kind


class _Transient(Exception):
    def __init__(self, error: TransferError) -> None:
        super().__init__(error.describe())
        self.error = error


def _tls_verification() -> ssl.SSLContext | bool:
    """Trust ``SSL_CERT_FILE`` when the emulator's environment names one (a local CA for Azurite over HTTPS).

    ``trust_env=False`` keeps proxies and ``.netrc`` out, which would also make httpx ignore this variable.
    """
    ca_file = os.environ.get("SSL_CERT_FILE")
    return ssl.create_default_context(cafile=ca_file) if ca_file else True


def client() -> httpx.Client:
    """The process-wide client (thread-safe; no proxies or ``.netrc`` from the environment).

    Returns:
        A shared :class:`httpx.Client`.
    """
    global _client  # noqa: PLW0603 - one connection pool per process
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                trust_env=False,
                verify=_tls_verification(),
                follow_redirects=False,
                timeout=httpx.Timeout(60.0, connect=5.0),
                headers={"x-ms-version": STORAGE_API_VERSION},
            )
        return _client


def blob_url(container_url: str, blob_name: str, extra_query: str = "") -> str:
    """The URL of one blob in a container given by a (SAS) container URL.

    Args:
        container_url: ``https://account.blob.../container?<sas>``.
        blob_name: The blob's name (``/`` kept as the virtual directory separator).
        extra_query: Query parameters to put before the SAS, e.g. ``comp=block&blockid=...``.

    Returns:
        ``<scheme>://<host>/<container>/<quoted blob name>?<extra>&<sas>``.
    """
    parts = urlsplit(container_url)
    path = parts.path.rstrip("/") + "/" + quote(blob_name, safe="/~")
    query = "&".join(q for q in (extra_query, parts.query) if q)
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def container_query_url(container_url: str, query: str) -> str:
    """The container URL with extra query parameters before its SAS (e.g. ``restype=container&comp=list``).

    Args:
        container_url: ``https://account.blob.../container?<sas>``.
        query: Already-encoded parameters.

    Returns:
        ``<scheme>://<host>/<container>?<query>&<sas>``.
    """
    parts = urlsplit(container_url)
    full_query = "&".join(q for q in (query, parts.query) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), full_query, ""))


def _status_error(response: httpx.Response, url: str) -> TransferError:
    return TransferError(
        kind="status",
        url=redact_url(url),
        status=response.status_code,
        storage_code=response.headers.get("x-ms-error-code"),
    )


def _with_retries(attempt: Callable[[], _T], url: str, cancel: threading.Event) -> _T:
    for delay in (*BACKOFF_SECONDS, None):
        try:
            return attempt()
        except _Transient as transient:
            error = transient.error
        except httpx.TimeoutException as timeout:
            error = TransferError("timeout", redact_url(url), reason=f"timed out: {timeout}")
        except httpx.TransportError as transport:
            error = TransferError("connection", redact_url(url), reason=f"connection failed: {transport}")
        if delay is None:
            raise error
        if cancel.wait(delay):
            raise TransferError("cancelled", redact_url(url), reason="the task was cancelled")
    raise AssertionError("unreachable")


def get_bytes(url: str, cancel: threading.Event) -> bytes:
    """GET a small resource (e.g. a List Blobs page), retrying transient failures.

    Args:
        url: The full URL, SAS included.
        cancel: Stops waiting between retries.

    Returns:
        The response body of a 200.

    Raises:
        TransferError: Non-200 answer, or transient failures on every attempt.
    """

    def attempt() -> bytes:
        response = client().get(url)
        if response.status_code in RETRY_STATUSES:
            raise _Transient(_status_error(response, url))
        if response.status_code != 200:
            raise _status_error(response, url)
        return response.content

    return _with_retries(attempt, url, cancel)


def download(url: str, destination: Path, cancel: threading.Event) -> int:
    """Stream a blob to ``destination`` (via a temporary ``.part`` file), retrying transient failures.

    Args:
        url: The blob URL, SAS included.
        destination: The final path; its directory must exist.
        cancel: Stops waiting between retries.

    Returns:
        The number of bytes written.

    Raises:
        TransferError: Non-200 answer, transient failures on every attempt, or a local write error.
    """
    partial = destination.with_name(destination.name + ".part")

    def attempt() -> int:
        with client().stream("GET", url) as response:
            if response.status_code in RETRY_STATUSES:
                raise _Transient(_status_error(response, url))
            if response.status_code != 200:
                raise _status_error(response, url)
            written = 0
            try:
                with partial.open("wb") as sink:
                    for chunk in response.iter_bytes(_CHUNK):
                        sink.write(chunk)
                        written += len(chunk)
                os.replace(partial, destination)
            except OSError as error:
                partial.unlink(missing_ok=True)
                raise TransferError("local", redact_url(url), reason=f"{error.strerror}: {destination}") from None
            return written

    return _with_retries(attempt, url, cancel)


def put(
    url: str,
    body: Callable[[], IO[bytes] | bytes],
    headers: Mapping[str, str],
    cancel: threading.Event,
    expected: int = 201,
) -> None:
    """PUT a body (re-opened for each attempt), retrying transient failures.

    Args:
        url: The target URL, SAS included.
        body: Returns a fresh file object (closed afterwards) or bytes for each attempt.
        headers: Request headers, e.g. ``x-ms-blob-type``.
        cancel: Stops waiting between retries.
        expected: The success status.

    Raises:
        TransferError: Another answer, or transient failures on every attempt.
    """

    def attempt() -> None:
        content = body()
        try:
            response = client().put(url, content=content, headers=headers)
        finally:
            if not isinstance(content, bytes):
                content.close()
        if response.status_code in RETRY_STATUSES:
            raise _Transient(_status_error(response, url))
        if response.status_code != expected:
            raise _status_error(response, url)

    _with_retries(attempt, url, cancel)
