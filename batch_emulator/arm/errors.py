"""ARM errors and the ARM error body ``{"error": {"code", "message", "target", "details"}}``.

Every error a management-plane request raises, including the data-plane errors the pool model raises
(``PoolQuotaReached``, ``InvalidPropertyValue``...), is answered in this shape with the same code.
"""

from __future__ import annotations

from typing import Any

from batch_emulator.errors import BadRequest, BatchError, NotFound

#: Path prefix of every management-plane route (compared case-insensitively, as ARM does).
ARM_PATH_PREFIX = "/subscriptions/"
_TARGET_KEYS = ("PropertyName", "QueryParameterName")


def is_arm_path(raw_path: str) -> bool:
    """True when a request path is a management-plane (ARM) path."""
    return raw_path.lower().startswith(ARM_PATH_PREFIX)


def arm_error_body(error: BatchError) -> dict[str, Any]:
    """Render an error in the ARM shape.

    Args:
        error: Any error of the service.

    Returns:
        ``{"error": {"code", "message"[, "target"][, "details"]}}``: ``target`` is the property or query
        parameter named by the error, ``details`` its other values.
    """
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    target = next((value for key, value in error.values if key in _TARGET_KEYS), None)
    if target is not None:
        body["target"] = target
    details = [{"code": key, "message": value} for key, value in error.values if key not in _TARGET_KEYS]
    if details:
        body["details"] = details
    return {"error": body}


class ArmAuthenticationFailed(
    BatchError,
    status=401,
    code="AuthenticationFailed",
    message="Authentication failed. The 'Authorization' header is missing.",
):
    """No usable Bearer token (ARM answers 401, never 403, for this)."""


class InvalidAuthenticationTokenAudience(
    ArmAuthenticationFailed, message="The access token has been obtained for wrong audience or resource."
):
    """A token for another resource than Azure Resource Manager."""


class ResourceNotFound(NotFound):
    """An account (or other resource) this service does not hold."""


class PropertyCannotBeUpdated(BadRequest, message="The specified property cannot be updated."):
    """A pool property that is fixed after creation."""

    def __init__(self, name: str) -> None:
        """Create the error for property ``name``."""
        super().__init__(f"The property '{name}' of a pool cannot be changed after it is created.")
        self.values = [("PropertyName", name)]
