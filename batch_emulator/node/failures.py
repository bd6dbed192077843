"""Batch ``failureInfo`` records (wire JSON), named after the codes the real service reports.

Codes and categories follow the Batch task scheduling error table (``BlobNotFound``,
``BlobAccessDenied``, ``CommandProgramNotFound``, ``TaskEnded`` ...) and the output-file
documentation (``FileUploadContainerNotFound``).
"""

from __future__ import annotations

from typing import Any, Literal

from batch_emulator.node.redact import redact_url

Category = Literal["usererror", "servererror"]


def failure_info(category: Category, code: str, message: str, **details: str | int | None) -> dict[str, Any]:
    """Build one wire ``failureInfo`` object; messages and detail values are SAS-redacted.

    Args:
        category: ``usererror`` or ``servererror`` (the REST enum spelling).
        code: The Batch failure code, e.g. ``BlobNotFound``.
        message: A human-readable explanation.
        **details: Extra name/value pairs for ``details[]``; ``None`` values are left out.

    Returns:
        ``{"category", "code", "message", "details": [{"name", "value"}...]}``.
    """
    return {
        "category": category,
        "code": code,
        "message": redact_url(message),
        "details": [
            {"name": name, "value": redact_url(str(value))} for name, value in details.items() if value is not None
        ],
    }


FAILURE_EXIT_CODE_MESSAGE = "The task exited with an exit code representing a failure"
TASK_ENDED_BY_USER_MESSAGE = "Task Was Ended by User Request"
