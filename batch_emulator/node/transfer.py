"""Blob REST transfers with SAS URLs: one shared HTTP client, retries with backoff on transient failures."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from batch_emulator.node.redact import redact_url

# Attempt n+1 waits BACKOFF_SECONDS[n]; a transient failure after the last one is reported.
BACKOFF_SECONDS = (0.1, 0.3, 0.9)
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
STORAGE_API_VERSION = "2021-08-06"
PRODUCTION_BLOB_SUFFIX = ".blob.core.windows.net"
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
    """Trust the CA bundle the environment names, as a node's HTTP clients do.

    ``REQUESTS_CA_BUNDLE`` (what ``requests`` and the Azure SDKs read) wins over ``SSL_CERT_FILE``; ``SSL_CERT_DIR``
    adds a directory. Without any of them the default trust store is used.
    """
    ca_file = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None
    ca_dir = os.environ.get("SSL_CERT_DIR") or None
    if ca_file is None and ca_dir is None:
        return True
    return ssl.create_default_context(cafile=ca_file, capath=ca_dir)


def client() -> httpx.Client:
    """The process-wide client (thread-safe).

    Like any HTTP client on a node it honours ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY``
    (``trust_env``; httpx reads no ``.netrc`` unless asked) and the CA bundle of :func:`_tls_verification`.

    Returns:
        A shared :class:`httpx.Client`.
    """
    global _client  # noqa: PLW0603 - one connection pool per process
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                trust_env=True,
                verify=_tls_verification(),
                follow_redirects=False,
                timeout=httpx.Timeout(60.0, connect=5.0),
                headers={"x-ms-version": STORAGE_API_VERSION},
            )
        return _client


def check_storage_endpoint(endpoint: str | None) -> str | None:
    """Check a ``storage_endpoint`` setting (``http://127.0.0.1:10000``): an http(s) URL without query.

    Returns:
        The endpoint without a trailing slash, or None.

    Raises:
        ValueError: not an http(s) URL with a host (one line that says what to pass instead).
    """
    if not endpoint:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(
            f"storage endpoint {endpoint!r} is not an http(s) URL such as http://127.0.0.1:10000 (Azurite)"
        )
    return endpoint.rstrip("/")


def map_storage_url(url: str, endpoint: str | None) -> str:
    """Send a production blob URL to a local endpoint, path-style, as Azurite serves accounts.

    ``https://acct.blob.core.windows.net/c/b?sas`` becomes ``<endpoint>/acct/c/b?sas``; other URLs are kept.

    Args:
        url: A blob or container URL.
        endpoint: The configured endpoint (see :func:`check_storage_endpoint`), or None to keep every URL.

    Returns:
        The URL the node fetches.
    """
    if not endpoint:
        return url
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host.endswith(PRODUCTION_BLOB_SUFFIX):
        return url
    account = host[: -len(PRODUCTION_BLOB_SUFFIX)]
    target = urlsplit(endpoint)
    return urlunsplit((target.scheme, target.netloc, f"{target.path}/{account}{parts.path}", parts.query, ""))


def map_storage_urls(files: list[dict[str, Any]], endpoint: str | None) -> list[dict[str, Any]]:
    """Apply :func:`map_storage_url` to the URLs of wire ``resourceFiles`` or ``outputFiles`` (copies).

    Args:
        files: ``resourceFiles`` (``httpUrl``, ``storageContainerUrl``) or ``outputFiles``
            (``destination.container.containerUrl``).
        endpoint: The configured endpoint, or None.

    Returns:
        The files with mapped URLs (the input unchanged when there is no endpoint).
    """
    if not endpoint:
        return files
    mapped = []
    for item in files:
        copy = dict(item)
        for name in ("httpUrl", "storageContainerUrl"):
            if isinstance(copy.get(name), str):
                copy[name] = map_storage_url(copy[name], endpoint)
        container = (copy.get("destination") or {}).get("container")
        if isinstance(container, dict) and isinstance(container.get("containerUrl"), str):
            copy["destination"] = {
                **copy["destination"],
                "container": {**container, "containerUrl": map_storage_url(container["containerUrl"], endpoint)},
            }
        mapped.append(copy)
    return mapped


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
