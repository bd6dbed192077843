"""Batch errors named after the service's wire codes, each rendering the exact Batch JSON error body.

Models raise these; the HTTP layer turns them into responses with :meth:`BatchError.to_body`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from batch_emulator.timefmt import iso

ERROR_METADATA_SUFFIX = "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


class BatchError(Exception):
    """Base of every error the service answers with; ``code`` and ``status`` follow Azure Batch.

    A subclass is named after its wire code, which it takes as its ``code`` unless it names another
    (``class PoolNotFound(NotFound, message="...")`` answers ``PoolNotFound``); it inherits ``status`` and the
    message unless it gives them (``status=404``, ``message="..."``).
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "Server encountered an internal error. Please try again after some time."

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, message: str | None = None, **kwargs: Any
    ) -> None:
        """Set the subclass's wire ``code`` (its own name by default), and its ``status`` and message if given."""
        super().__init_subclass__(**kwargs)
        cls.code = code or cls.__name__
        if status is not None:
            cls.status = status
        if message is not None:
            cls.default_message = message

    def __init__(
        self,
        message: str | None = None,
        *,
        values: Sequence[tuple[str, str | None]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: Human-readable text (the first line of ``message.value``); the class default if None.
            values: ``values[]`` key/value pairs, e.g. ``("PropertyName", "id")``; a None value is left out.
            headers: Extra response headers (e.g. ``Retry-After``).
        """
        self.message = message or self.default_message
        self.values = list(values)
        self.headers = dict(headers or {})
        super().__init__(f"{self.code}: {self.message}")

    def to_body(self, base_url: str, request_id: str, now: datetime) -> dict[str, Any]:
        """Render the Batch error body.

        Args:
            base_url: The account URL used in ``odata.metadata``.
            request_id: The server request id shown in the message.
            now: The time shown in the message.

        Returns:
            The JSON-ready error body.
        """
        body: dict[str, Any] = {
            "odata.metadata": base_url + ERROR_METADATA_SUFFIX,
            "code": self.code,
            "message": {"lang": "en-US", "value": f"{self.message}\nRequestId:{request_id}\nTime:{iso(now)}"},
        }
        if self.values:
            body["values"] = [
                {"key": key} if value is None else {"key": key, "value": value} for key, value in self.values
            ]
        return body


# --- 400 -----------------------------------------------------------------------------------------------------
class BadRequest(BatchError, status=400, code="InvalidInput", message="One of the request inputs is not valid."):
    """A request the service refuses as malformed (400)."""


class InvalidPropertyValue(
    BadRequest, message="The value provided for one of the properties in the request body is invalid."
):
    """A body property has an invalid value."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        """Create the error for property ``name`` holding ``value`` (None: no value shown), because of ``reason``."""
        shown = None if value is None else str(value)
        super().__init__(values=[("PropertyName", name), ("PropertyValue", shown), ("Reason", reason)])


class UnsupportedImageReference(BadRequest, code="InvalidPropertyValue", message=InvalidPropertyValue.default_message):
    """An ``imageReference`` the service does not support: ``PropertyName`` and ``Reason`` only, no value.

    The Azure CLI's recording (April 2024) shows the service's answer:
    ``The specified imageReference with publisher a offer b sku c is not supported.``
    """

    def __init__(self, publisher: str, offer: str, sku: str, hint: str) -> None:
        """Create the error for the image ``publisher``/``offer``/``sku``; ``hint`` says where to look."""
        reason = f"The specified imageReference with publisher {publisher} offer {offer} sku {sku} is not supported."
        super().__init__(values=[("PropertyName", "imageReference"), ("Reason", f"{reason} {hint}")])


class MissingRequiredProperty(BadRequest, message="A required property was not specified in the request body."):
    """A required body property is missing."""

    def __init__(self, name: str) -> None:
        """Create the error for the missing property ``name``."""
        super().__init__(values=[("PropertyName", name)])


class InvalidRequestBody(BadRequest, message="The specified Request Body is not syntactically valid."):
    """The body is not valid JSON or not the expected shape."""


class InvalidQueryParameterValue(
    BadRequest, message="Value for one of the query parameters specified in the request URI is invalid."
):
    """A query parameter (``$filter``, ``maxresults``, ...) has an invalid value."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        """Create the error for query parameter ``name`` holding ``value``, because of ``reason``."""
        super().__init__(values=[("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)])


class MissingRequiredQueryParameter(
    BadRequest, message="A query parameter that's mandatory for this request is not specified."
):
    """A mandatory query parameter (``api-version``) is missing."""

    def __init__(self, name: str) -> None:
        """Create the error for the missing query parameter ``name``."""
        super().__init__(values=[("QueryParameterName", name)])


class InvalidUri(BadRequest, message="The requested URI does not represent any resource on the server."):
    """The path names no resource of the Batch API."""


class CertificateRetired(BadRequest, message="The 'Azure Batch Certificates' feature was retired on 02/29/2024."):
    """Certificates left Azure Batch on 29 February 2024: certificate operations and references are refused."""

    REASON = (
        "The operation is blocked because the 'Azure Batch Certificates' feature was retired on 02/29/2024. "
        "For Certificate APIs, they are no longer supported. For Pool, Job, and Job Schedule APIs, the target "
        "resource should no longer contain certificate references, please either remove the certificate "
        "references or delete the resource."
    )

    def __init__(self) -> None:
        """Create the error with the service's ``Reason``."""
        super().__init__(values=[("Reason", self.REASON)])


class AutoScalingFormulaSyntaxError(BadRequest, message="The specified auto-scaling formula has a syntax error."):
    """An autoscale formula that does not parse (enable autoscale, create an autoscale pool)."""

    def __init__(self, detail: str) -> None:
        """Create the error; ``detail`` (``Line L, Col C: ...``) becomes the ``Message`` value."""
        super().__init__(values=[("Message", detail)])


class AutoScalingFormulaTooLong(BadRequest, message="The specified auto-scaling formula exceeds lengths limit."):
    """An autoscale formula longer than 8192 characters."""


# --- 403 / 412 / 413 / 416 -----------------------------------------------------------------------------------
class AuthenticationFailed(
    BatchError,
    status=403,
    message="Server failed to authenticate the request. "
    "Make sure the value of Authorization header is correctly formed including the signature.",
):
    """The SharedKey signature (or the account, or the header) is wrong."""

    def __init__(self, detail: str) -> None:
        """Create the error with ``detail`` as its ``AuthenticationErrorDetail``."""
        super().__init__(values=[("AuthenticationErrorDetail", detail)])


class Forbidden(
    BatchError,
    status=403,
    code="InsufficientAccountPermissions",
    message="The emulator admin endpoints answer loopback clients only.",
):
    """An admin endpoint reached from a non-loopback address."""


class ConditionNotMet(
    BatchError, status=412, message="The condition specified using HTTP conditional header(s) is not met."
):
    """An ``If-*`` precondition failed."""


class RequestBodyTooLarge(
    BatchError, status=413, message="The request body is too large and exceeds the maximum permissible limit."
):
    """The body exceeds 1 MB (the SDKs split task collections on this code)."""


class InvalidRange(
    BatchError, status=416, message="The range specified is invalid for the current size of the resource."
):
    """An ``ocp-range`` outside the file."""


# --- 404 -----------------------------------------------------------------------------------------------------
class NotFound(BatchError, status=404, code="ResourceNotFound", message="The specified resource does not exist."):
    """A resource that does not exist (404)."""


class PoolNotFound(NotFound, message="The specified pool does not exist."):
    """No such pool."""


class JobNotFound(NotFound, message="The specified job does not exist."):
    """No such job."""


class TaskNotFound(NotFound, message="The specified task does not exist."):
    """No such task."""


class NodeNotFound(NotFound, message="The specified node does not exist."):
    """No such compute node."""


class NodeUserNotFound(NotFound, message="The specified node user does not exist."):
    """No such user account on the node."""


class JobScheduleNotFound(NotFound, message="The specified job schedule does not exist."):
    """No such job schedule."""


class FileNotFound(NotFound, message="The specified file does not exist."):
    """No such file on the node."""


class ApplicationNotFound(NotFound, message="The specified application does not exist."):
    """No such application package (the emulator has none)."""


# --- 409 -----------------------------------------------------------------------------------------------------
class Conflict(
    BatchError,
    status=409,
    code="OperationInvalidForCurrentState",
    message="The specified operation is not valid for the current state of the resource.",
):
    """The request conflicts with the resource's current state (409)."""


class PoolBeingResized(Conflict, message="The specified pool is being resized."):
    """The pool is resizing (enabling autoscale waits for a steady pool)."""


class PoolExists(Conflict, message="The specified pool already exists."):
    """A pool with this id exists (ids compare case-insensitively)."""


class JobExists(Conflict, message="The specified job already exists."):
    """A job with this id exists."""


class TaskExists(Conflict, message="The specified task already exists."):
    """A task with this id exists in the job."""


class NodeUserExists(Conflict, message="The specified node user already exists."):
    """A user account with this name exists on the node."""


class NodeBeingCreated(Conflict, message="The specified node is being created."):
    """The node is still being created."""


class NodeBeingStarted(Conflict, message="The specified node is being started."):
    """The node is starting."""


class NodeBeingRebooted(Conflict, message="The specified node is being rebooted."):
    """The node is rebooting."""


class NodeBeingReimaged(Conflict, message="The specified node is being reimaged."):
    """The node is being reimaged."""


class NodeStateUnusable(Conflict, message="The state of the specified node is unusable."):
    """The node is unusable."""


class NodeAlreadyInTargetSchedulingState(
    Conflict, message="The specified node is already in the target scheduling state."
):
    """Disable (or enable) scheduling on a node whose scheduling is already disabled (enabled)."""


class PoolBeingDeleted(Conflict, message="The specified pool has been marked for deletion and is being reclaimed."):
    """The pool is in the ``deleting`` state."""


class JobBeingDeleted(
    Conflict, message="The specified job has been marked for deletion and is being garbage collected."
):
    """The job is in the ``deleting`` state."""


class JobBeingTerminated(Conflict, message="The specified job is being terminated."):
    """The job is in the ``terminating`` state."""


class JobCompleted(Conflict, message="The specified job is already in a completed state."):
    """The job is completed; it accepts no new tasks."""


class TaskCompleted(Conflict, message="The specified task is already completed."):
    """The task is completed."""


class OperationInvalidForCurrentState(
    Conflict, message="The specified operation is not valid for the current state of the resource."
):
    """The operation is not valid in the resource's state (e.g. the files of a task that has not run)."""


class TaskFilesUnavailable(
    Conflict, message="The files of the specified task are not available, the task has no node."
):
    """The task has not run on a node (or its node is gone)."""


class JobScheduleExists(Conflict, message="The specified job schedule already exists."):
    """A job schedule with this id exists."""


class JobWithSameIdExists(
    Conflict, message="A job with the specified job schedule id exists. Job and job schedule cannot have the same id."
):
    """A job has the id asked for a job schedule."""


class JobScheduleWithSameIdExists(
    Conflict, message="A job schedule with the specified job id exists. Job and job schedule cannot have the same id."
):
    """A job schedule has the id asked for a job."""


class JobScheduleBeingDeleted(
    Conflict, message="The specified job schedule has been marked for deletion and is being reclaimed."
):
    """The job schedule is in the ``deleting`` state."""


class JobScheduleBeingTerminated(Conflict, message="The specified job schedule is being terminated."):
    """The job schedule is in the ``terminating`` state."""


class JobScheduleCompleted(Conflict, message="The specified job schedule is already in completed state."):
    """The job schedule is completed."""


class JobScheduleDisabled(Conflict, message="The specified job schedule is disabled."):
    """The job schedule is disabled."""


class PoolQuotaReached(Conflict, message="The specified account has reached its pool quota."):
    """The account's pool quota is used up."""


class ActiveJobAndScheduleQuotaReached(
    Conflict, message="The specified account has reached its quota of active jobs and job schedules."
):
    """The account's active job and job schedule quota is used up."""


# --- 429 / 5xx -----------------------------------------------------------------------------------------------
class TooManyRequests(
    BatchError, status=429, message="The server is throttling requests; retry after the time given in Retry-After."
):
    """Injected throttling (429)."""


class ServerBusy(
    BatchError, status=503, message="The server is currently unable to receive requests. Please retry your request."
):
    """Injected unavailability (503)."""


class TooManyEnableAutoScaleRequests(
    BatchError, status=503, message="Too many Enable Pool AutoScale requests are issued on the pool."
):
    """A second ``enableautoscale`` on a pool within 30 service seconds (503, as the Batch error code list says)."""


class InternalError(BatchError, status=500):
    """An unexpected failure, or an injected server error (500)."""


class OperationNotImplemented(
    BatchError,
    status=501,
    code="NotImplemented",
    message="The requested operation is not implemented by the local Batch service.",
):
    """A Batch operation or feature the local service does not implement (never a silent success)."""

    def __init__(self, what: str) -> None:
        """Create the error naming the unimplemented operation or property ``what``."""
        super().__init__(f"The local Batch service does not implement {what}.", values=[("NotImplemented", what)])
