"""Tell transient Azure failures (retry them) from permanent ones (fail at once, in one line)."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from batchpipe.errors import BatchpipeError, CloudError
from batchpipe.redact import redact

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """True for throttling, server errors and broken connections: worth another attempt."""
    if isinstance(error, BatchpipeError):
        return False
    if isinstance(error, ServiceRequestError | ServiceResponseError | ConnectionError | TimeoutError):
        return True
    if isinstance(error, HttpResponseError):
        return error.status_code in TRANSIENT_STATUS
    return False


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only when the failure is transient."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - we classify whatever the task raised
        return is_transient(error)
    return False


def error_code(error: BaseException) -> str | None:
    """The service's error code (``PoolNotFound``, ``AuthenticationFailed``, ...) if the error carries one."""
    if isinstance(error, HttpResponseError):
        detail = getattr(error, "error", None)
        code = getattr(detail, "code", None)
        if code:
            return str(code)
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None) or {}
        header_code = headers.get("x-ms-error-code")
        return str(header_code) if header_code else None
    return None


def explain(error: BaseException, service: str, action: str) -> BatchpipeError:
    """Turn an SDK exception into one line that says what failed and what to check.

    Args:
        error: the exception raised by the Azure SDK.
        service: ``"Batch"`` or ``"Storage"``.
        action: what we were doing, e.g. ``"creating pool batchpipe-pool"``.

    Returns:
        A :class:`CloudError` (or the error itself if it already is a :class:`BatchpipeError`).
    """
    if isinstance(error, BatchpipeError):
        return error
    code = error_code(error)
    status = getattr(error, "status_code", None)
    hint = ""
    if isinstance(error, ClientAuthenticationError) or status == 403 or code == "AuthenticationFailed":
        key = "BATCHPIPE_BATCH_ACCOUNT_KEY" if service == "Batch" else "BATCHPIPE_STORAGE_ACCOUNT_KEY"
        hint = f"check {key} (or your Entra ID role assignment) and that the SAS has not expired"
    elif isinstance(error, ServiceRequestError):
        endpoint = "BATCHPIPE_BATCH_ENDPOINT" if service == "Batch" else "BATCHPIPE_STORAGE_ACCOUNT_URL"
        hint = f"the endpoint is unreachable: check {endpoint} and your network"
    elif isinstance(error, ResourceNotFoundError):
        hint = "it does not exist (deleted meanwhile?)"
    elif code and code.endswith("QuotaReached"):
        hint = "the account quota is exhausted: free resources or request a quota increase"
    detail = _first_line(error)
    for why in (authentication_detail(error), property_detail(error)):
        if why and why not in detail:
            detail = f"{detail} {why}"
    label = f"{code}: " if code and code not in detail else ""
    message = f"{service} failed while {action}: {label}{detail}"
    # Refused values are echoed back by the service and may be URLs carrying a SAS.
    return CloudError(redact(f"{message} ({hint})" if hint else message))


def authentication_detail(error: BaseException) -> str | None:
    """Why authentication failed (``AuthenticationErrorDetail``: wrong token audience, expired token, ...).

    Storage keeps it in ``additional_info``, Batch in the OData error's ``details``; the main message is generic.
    """
    info = getattr(error, "additional_info", None)
    if isinstance(info, dict) and info.get("authenticationerrordetail"):
        return str(info["authenticationerrordetail"])
    for item in getattr(getattr(error, "error", None), "details", None) or []:
        if getattr(item, "code", None) == "AuthenticationErrorDetail" and getattr(item, "message", None):
            return str(item.message)
    return None


def property_detail(error: BaseException) -> str | None:
    """Which property or parameter Batch refused, its value and why (``InvalidPropertyValue`` and the like).

    The main message ("The value provided for one of the properties in the request body is invalid.") does not
    say which; the OData error's ``details`` do: ``[vmSize='standard_nope': The VM size is not ...]``.
    """
    items = {
        str(item.code): " ".join(str(item.message).split())
        for item in getattr(getattr(error, "error", None), "details", None) or []
        if getattr(item, "code", None) and getattr(item, "message", None) is not None
    }
    name = items.get("PropertyName") or items.get("QueryParameterName") or items.get("HeaderName")
    if not name:
        return None
    value = items.get("PropertyValue") or items.get("QueryParameterValue") or items.get("HeaderValue")
    reason = items.get("Reason")
    return f"[{name}{f'={value!r}' if value is not None else ''}{f': {reason}' if reason else ''}]"


def _first_line(error: BaseException) -> str:
    detail = getattr(getattr(error, "error", None), "message", None) or getattr(error, "message", None) or str(error)
    text = str(detail).strip().splitlines()
    return text[0] if text else type(error).__name__
