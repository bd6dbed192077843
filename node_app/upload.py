"""Upload one block blob with a container SAS over HTTP(S), standard library only.

A single ``Put Blob`` request (the output is small) with ``x-ms-blob-type: BlockBlob``. Throttling (408, 429),
server errors (500, 502, 503, 504) and connection errors are retried with exponential backoff and jitter, waiting
at least as long as a ``Retry-After`` header asks. Messages never contain the SAS: the URL is shown without its
query and any ``sig=`` that slips into a lower-level message is masked.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import NamedTuple

from node_app.errors import UploadError, UsageError

#: The storage REST version sent with each request (supported by Azure Storage and Azurite 3.37).
STORAGE_API_VERSION = "2023-11-03"
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_ERROR_CODE_IN_BODY = re.compile(rb"<Code>\s*([^<\s]+)\s*</Code>")
_SIGNATURE = re.compile(r"(sig=)[^&\s'\"]*", re.IGNORECASE)


class RetryPolicy(NamedTuple):
    """How often and how patiently to retry."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    timeout: float = 60.0


class UploadResult(NamedTuple):
    """What the storage service answered to the successful request."""

    status: int
    attempts: int
    request_id: str


def default_blob_endpoint(account: str) -> str:
    """Return the public-cloud blob endpoint of a storage account.

    Args:
        account: the storage account name.

    Returns:
        ``https://<account>.blob.core.windows.net``.
    """
    return f"https://{account}.blob.core.windows.net"


def blob_url(endpoint: str, container: str, blob_name: str) -> str:
    """Build a blob's URL without any query (safe to print).

    Args:
        endpoint: the blob endpoint, e.g. ``https://acct.blob.core.windows.net`` or ``http://127.0.0.1:10000/acct``.
        container: the container name.
        blob_name: the blob name.

    Returns:
        the URL.

    Raises:
        UsageError: the endpoint is not an absolute http(s) URL.
    """
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
        raise UsageError(f"--blob-endpoint must be an http(s) URL without query, got {redact(endpoint)!r}")
    return f"{endpoint.rstrip('/')}/{urllib.parse.quote(container)}/{urllib.parse.quote(blob_name)}"


def redact(text: str, secret: str = "") -> str:
    """Mask SAS signatures (and optionally a whole secret) in a message.

    Args:
        text: any message.
        secret: a value that must not appear, e.g. the SAS token.

    Returns:
        the message with ``sig=...`` values and the secret replaced.
    """
    if secret:
        text = text.replace(secret, "<SAS>")
    return _SIGNATURE.sub(r"\1<redacted>", text)


def upload_block_blob(
    url: str,
    sas: str,
    data: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    policy: RetryPolicy = RetryPolicy(),  # noqa: B008 - immutable NamedTuple
    sleep: Callable[[float], None] = time.sleep,
) -> UploadResult:
    """Create or replace a block blob in one request, retrying transient failures.

    Args:
        url: the blob URL without query (see :func:`blob_url`).
        sas: a SAS token with write (or create) permission, with or without the leading ``?``.
        data: the blob's content.
        content_type: the blob's ``Content-Type``.
        policy: retry limits and the per-request timeout.
        sleep: how to wait between attempts (tests record the delays instead of waiting).

    Returns:
        the status, the number of attempts and the service's request id.

    Raises:
        UploadError: a non-retryable answer, or retries exhausted; the message has the HTTP status and the storage
            error code (or the connection error) but never the SAS.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UsageError("the blob URL must use http or https")
    sas = sas.lstrip("?")
    full_url = f"{url}?{sas}"
    last_failure = ""
    for attempt in range(1, policy.max_attempts + 1):
        request = urllib.request.Request(full_url, data=data, method="PUT")  # noqa: S310 - scheme checked above
        request.add_header("x-ms-blob-type", "BlockBlob")
        request.add_header("x-ms-version", STORAGE_API_VERSION)
        request.add_header("x-ms-client-request-id", str(uuid.uuid4()))
        request.add_header("Content-Type", content_type)
        request.add_header("Content-Length", str(len(data)))
        retry_after: float | None = None
        try:
            with urllib.request.urlopen(request, timeout=policy.timeout) as response:  # noqa: S310
                response.read()
                return UploadResult(response.status, attempt, response.headers.get("x-ms-request-id", ""))
        except urllib.error.HTTPError as error:
            body = _read_body(error)
            code = error.headers.get("x-ms-error-code") or _error_code_from_body(body) or "no error code"
            request_id = error.headers.get("x-ms-request-id", "")
            last_failure = f"HTTP {error.code} {code}" + (f" (x-ms-request-id {request_id})" if request_id else "")
            if error.code not in RETRYABLE_STATUSES:
                break
            retry_after = _retry_after_seconds(error.headers.get("Retry-After"))
        except (http.client.InvalidURL, ValueError) as error:  # e.g. a SAS containing spaces
            last_failure = f"invalid request: {error}"
            break
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = error.reason if isinstance(error, urllib.error.URLError) else error
            last_failure = f"connection error: {reason}"
            if isinstance(reason, (ssl.SSLCertVerificationError, str)):
                break
        if attempt < policy.max_attempts:
            sleep(_backoff(attempt, policy, retry_after))
    raise UploadError(redact(f"upload to {url} failed after {attempt} attempt(s): {last_failure}", secret=sas))


def _backoff(attempt: int, policy: RetryPolicy, retry_after: float | None) -> float:
    """Exponential backoff with equal jitter; never shorter than the server's Retry-After."""
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_delay))
    return delay


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse ``Retry-After`` given as seconds or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # Python 3.8-3.9 raise TypeError for unparsable dates, newer ones ValueError
        return None
    return max(0.0, float(moment.timestamp()) - time.time())


def _read_body(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(64 * 1024)
    except OSError:
        return b""
    finally:
        error.close()


def _error_code_from_body(body: bytes) -> str:
    match = _ERROR_CODE_IN_BODY.search(body)
    return match.group(1).decode("ascii", "replace") if match else ""
