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
    """Base of every error the service answers with; ``code`` and ``status`` follow Azure Batch."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "Server encountered an internal error. Please try again after some time."

    def __init__(
        self,
        message: str | None = None,
        *,
        values: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Create the error.

        Args:
            message: Human-readable text (the first line of ``message.value``); the class default if None.
            values: ``values[]`` key/value pairs, e.g. ``("PropertyName", "id")``.
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
            body["values"] = [{"key": key, "value": value} for key, value in self.values]
        return body


# --- 400 -----------------------------------------------------------------------------------------------------
class BadRequest(BatchError):
    """A request the service refuses as malformed (400)."""

    status = 400
    code = "InvalidInput"
    default_message = "One of the request inputs is not valid."


class InvalidPropertyValue(BadRequest):
    """A body property has an invalid value."""

    code = "InvalidPropertyValue"
    default_message = "The value provided for one of the properties in the request body is invalid."

    def __init__(self, name: str, value: object, reason: str) -> None:
        """Create the error for property ``name`` holding ``value``, because of ``reason``."""
        super().__init__(values=[("PropertyName", name), ("PropertyValue", str(value)), ("Reason", reason)])


class UnsupportedImageReference(BadRequest):
    """An ``imageReference`` the service does not support: ``PropertyName`` and ``Reason`` only, no value.

    The Azure CLI's recording (April 2024) shows the service's answer:
    ``The specified imageReference with publisher a offer b sku c is not supported.``
    """

    code = "InvalidPropertyValue"
    default_message = InvalidPropertyValue.default_message

    def __init__(self, publisher: str, offer: str, sku: str, hint: str) -> None:
        """Create the error for the image ``publisher``/``offer``/``sku``; ``hint`` says where to look."""
        reason = f"The specified imageReference with publisher {publisher} offer {offer} sku {sku} is not supported."
        super().__init__(values=[("PropertyName", "imageReference"), ("Reason", f"{reason} {hint}")])


class MissingRequiredProperty(BadRequest):
    """A required body property is missing."""

    code = "MissingRequiredProperty"
    default_message = "A required property was not specified in the request body."

    def __init__(self, name: str) -> None:
        """Create the error for the missing property ``name``."""
        super().__init__(values=[("PropertyName", name)])


class InvalidRequestBody(BadRequest):
    """The body is not valid JSON or not the expected shape."""

    code = "InvalidRequestBody"
    default_message = "The specified Request Body is not syntactically valid."


class InvalidQueryParameterValue(BadRequest):
    """A query parameter (``$filter``, ``maxresults``, ...) has an invalid value."""

    code = "InvalidQueryParameterValue"
    default_message = "Value for one of the query parameters specified in the request URI is invalid."

    def __init__(self, name: str, value: str, reason: str) -> None:
        """Create the error for query parameter ``name`` holding ``value``, because of ``reason``."""
        super().__init__(values=[("QueryParameterName", name), ("QueryParameterValue", value), ("Reason", reason)])


class MissingRequiredQueryParameter(BadRequest):
    """A mandatory query parameter (``api-version``) is missing."""

    code = "MissingRequiredQueryParameter"
    default_message = "A query parameter that's mandatory for this request is not specified."

    def __init__(self, name: str) -> None:
        """Create the error for the missing query parameter ``name``."""
        super().__init__(values=[("QueryParameterName", name)])


class InvalidUri(BadRequest):
    """The path names no resource of the Batch API."""

    code = "InvalidUri"
    default_message = "The requested URI does not represent any resource on the server."


class CertificateRetired(BadRequest):
    """Certificates left Azure Batch on 29 February 2024: certificate operations and references are refused."""

    code = "CertificateRetired"
    default_message = "The 'Azure Batch Certificates' feature was retired on 02/29/2024."
    REASON = (
        "The operation is blocked because the 'Azure Batch Certificates' feature was retired on 02/29/2024. "
        "For Certificate APIs, they are no longer supported. For Pool, Job, and Job Schedule APIs, the target "
        "resource should no longer contain certificate references, please either remove the certificate "
        "references or delete the resource."
    )

    def __init__(self) -> None:
        """Create the error with the service's ``Reason``."""
        super().__init__(values=[("Reason", self.REASON)])


class AutoScalingFormulaSyntaxError(BadRequest):
    """An autoscale formula that does not parse (enable autoscale, create an autoscale pool)."""

    code = "AutoScalingFormulaSyntaxError"
    default_message = "The specified auto-scaling formula has a syntax error."

    def __init__(self, detail: str) -> None:
        """Create the error; ``detail`` (``Line L, Col C: ...``) becomes the ``Message`` value."""
        super().__init__(values=[("Message", detail)])


class AutoScalingFormulaTooLong(BadRequest):
    """An autoscale formula longer than 8192 characters."""

    code = "AutoScalingFormulaTooLong"
    default_message = "The specified auto-scaling formula exceeds lengths limit."


# --- 403 / 412 / 413 / 416 -----------------------------------------------------------------------------------
class AuthenticationFailed(BatchError):
    """The SharedKey signature (or the account, or the header) is wrong."""

    status = 403
    code = "AuthenticationFailed"
    default_message = (
        "Server failed to authenticate the request. "
        "Make sure the value of Authorization header is correctly formed including the signature."
    )

    def __init__(self, detail: str) -> None:
        """Create the error with ``detail`` as its ``AuthenticationErrorDetail``."""
        super().__init__(values=[("AuthenticationErrorDetail", detail)])


class Forbidden(BatchError):
    """An admin endpoint reached from a non-loopback address."""

    status = 403
    code = "InsufficientAccountPermissions"
    default_message = "The emulator admin endpoints answer loopback clients only."


class ConditionNotMet(BatchError):
    """An ``If-*`` precondition failed."""

    status = 412
    code = "ConditionNotMet"
    default_message = "The condition specified using HTTP conditional header(s) is not met."


class RequestBodyTooLarge(BatchError):
    """The body exceeds 1 MB (the SDKs split task collections on this code)."""

    status = 413
    code = "RequestBodyTooLarge"
    default_message = "The request body is too large and exceeds the maximum permissible limit."


class InvalidRange(BatchError):
    """An ``ocp-range`` outside the file."""

    status = 416
    code = "InvalidRange"
    default_message = "The range specified is invalid for the current size of the resource."


# --- 404 -----------------------------------------------------------------------------------------------------
class NotFound(BatchError):
    """A resource that does not exist (404)."""

    status = 404
    code = "ResourceNotFound"
    default_message = "The specified resource does not exist."


class PoolNotFound(NotFound):
    """No such pool."""

    code = "PoolNotFound"
    default_message = "The specified pool does not exist."


class JobNotFound(NotFound):
    """No such job."""

    code = "JobNotFound"
    default_message = "The specified job does not exist."


class TaskNotFound(NotFound):
    """No such task."""

    code = "TaskNotFound"
    default_message = "The specified task does not exist."


class NodeNotFound(NotFound):
    """No such compute node."""

    code = "NodeNotFound"
    default_message = "The specified node does not exist."


class NodeUserNotFound(NotFound):
    """No such user account on the node."""

    code = "NodeUserNotFound"
    default_message = "The specified node user does not exist."


class JobScheduleNotFound(NotFound):
    """No such job schedule."""

    code = "JobScheduleNotFound"
    default_message = "The specified job schedule does not exist."


class FileNotFound(NotFound):
    """No such file on the node."""

    code = "FileNotFound"
    default_message = "The specified file does not exist."


class ApplicationNotFound(NotFound):
    """No such application package (the emulator has none)."""

    code = "ApplicationNotFound"
    default_message = "The specified application does not exist."


# --- 409 -----------------------------------------------------------------------------------------------------
class Conflict(BatchError):
    """The request conflicts with the resource's current state (409)."""

    status = 409
    code = "OperationInvalidForCurrentState"
    default_message = "The specified operation is not valid for the current state of the resource."


class PoolBeingResized(Conflict):
    """The pool is resizing (enabling autoscale waits for a steady pool)."""

    code = "PoolBeingResized"
    default_message = "The specified pool is being resized."


class PoolExists(Conflict):
    """A pool with this id exists (ids compare case-insensitively)."""

    code = "PoolExists"
    default_message = "The specified pool already exists."


class JobExists(Conflict):
    """A job with this id exists."""

    code = "JobExists"
    default_message = "The specified job already exists."


class TaskExists(Conflict):
    """A task with this id exists in the job."""

    code = "TaskExists"
    default_message = "The specified task already exists."


class NodeUserExists(Conflict):
    """A user account with this name exists on the node."""

    code = "NodeUserExists"
    default_message = "The specified node user already exists."


class NodeBeingCreated(Conflict):
    """The node is still being created."""

    code = "NodeBeingCreated"
    default_message = "The specified node is being created."


class NodeBeingStarted(Conflict):
    """The node is starting."""

    code = "NodeBeingStarted"
    default_message = "The specified node is being started."


class NodeBeingRebooted(Conflict):
    """The node is rebooting."""

    code = "NodeBeingRebooted"
    default_message = "The specified node is being rebooted."


class NodeBeingReimaged(Conflict):
    """The node is being reimaged."""

    code = "NodeBeingReimaged"
    default_message = "The specified node is being reimaged."


class NodeStateUnusable(Conflict):
    """The node is unusable."""

    code = "NodeStateUnusable"
    default_message = "The state of the specified node is unusable."


class NodeAlreadyInTargetSchedulingState(Conflict):
    """Disable (or enable) scheduling on a node whose scheduling is already disabled (enabled)."""

    code = "NodeAlreadyInTargetSchedulingState"
    default_message = "The specified node is already in the target scheduling state."


class PoolBeingDeleted(Conflict):
    """The pool is in the ``deleting`` state."""

    code = "PoolBeingDeleted"
    default_message = "The specified pool has been marked for deletion and is being reclaimed."


class JobBeingDeleted(Conflict):
    """The job is in the ``deleting`` state."""

    code = "JobBeingDeleted"
    default_message = "The specified job has been marked for deletion and is being garbage collected."


class JobBeingTerminated(Conflict):
    """The job is in the ``terminating`` state."""

    code = "JobBeingTerminated"
    default_message = "The specified job is being terminated."


class JobCompleted(Conflict):
    """The job is completed; it accepts no new tasks."""

    code = "JobCompleted"
    default_message = "The specified job is already in a completed state."


class TaskCompleted(Conflict):
    """The task is completed."""

    code = "TaskCompleted"
    default_message = "The specified task is already completed."


class OperationInvalidForCurrentState(Conflict):
    """The operation is not valid in the resource's state (e.g. the files of a task that has not run)."""

    default_message = "The specified operation is not valid for the current state of the resource."


class TaskFilesUnavailable(Conflict):
    """The task has not run on a node (or its node is gone)."""

    code = "TaskFilesUnavailable"
    default_message = "The files of the specified task are not available, the task has no node."


class JobScheduleExists(Conflict):
    """A job schedule with this id exists."""

    code = "JobScheduleExists"
    default_message = "The specified job schedule already exists."


class JobWithSameIdExists(Conflict):
    """A job has the id asked for a job schedule."""

    code = "JobWithSameIdExists"
    default_message = "A job with the specified job schedule id exists. Job and job schedule cannot have the same id."


class JobScheduleWithSameIdExists(Conflict):
    """A job schedule has the id asked for a job."""

    code = "JobScheduleWithSameIdExists"
    default_message = "A job schedule with the specified job id exists. Job and job schedule cannot have the same id."


class JobScheduleBeingDeleted(Conflict):
    """The job schedule is in the ``deleting`` state."""

    code = "JobScheduleBeingDeleted"
    default_message = "The specified job schedule has been marked for deletion and is being reclaimed."


class JobScheduleBeingTerminated(Conflict):
    """The job schedule is in the ``terminating`` state."""

    code = "JobScheduleBeingTerminated"
    default_message = "The specified job schedule is being terminated."


class JobScheduleCompleted(Conflict):
    """The job schedule is completed."""

    code = "JobScheduleCompleted"
    default_message = "The specified job schedule is already in completed state."


class JobScheduleDisabled(Conflict):
    """The job schedule is disabled."""

    code = "JobScheduleDisabled"
    default_message = "The specified job schedule is disabled."


class PoolQuotaReached(Conflict):
    """The account's pool quota is used up."""

    code = "PoolQuotaReached"
    default_message = "The specified account has reached its pool quota."


class ActiveJobAndScheduleQuotaReached(Conflict):
    """The account's active job and job schedule quota is used up."""

    code = "ActiveJobAndScheduleQuotaReached"
    default_message = "The specified account has reached its quota of active jobs and job schedules."


# --- 429 / 5xx -----------------------------------------------------------------------------------------------
class TooManyRequests(BatchError):
    """Injected throttling (429)."""

    status = 429
    code = "TooManyRequests"
    default_message = "The server is throttling requests; retry after the time given in Retry-After."


class ServerBusy(BatchError):
    """Injected unavailability (503)."""

    status = 503
    code = "ServerBusy"
    default_message = "The server is currently unable to receive requests. Please retry your request."


class TooManyEnableAutoScaleRequests(BatchError):
    """A second ``enableautoscale`` on a pool within 30 service seconds (503, as the Batch error code list says)."""

    status = 503
    code = "TooManyEnableAutoScaleRequests"
    default_message = "Too many Enable Pool AutoScale requests are issued on the pool."


class InternalError(BatchError):
    """An unexpected failure, or an injected server error (500)."""

    status = 500
    code = "InternalError"


class OperationNotImplemented(BatchError):
    """A Batch operation or feature the local service does not implement (never a silent success)."""

    status = 501
    code = "NotImplemented"
    default_message = "The requested operation is not implemented by the local Batch service."

    def __init__(self, what: str) -> None:
        """Create the error naming the unimplemented operation or property ``what``."""
        super().__init__(f"The local Batch service does not implement {what}.", values=[("NotImplemented", what)])
