"""Errors are named after the wire code they answer with; the few that are not say which code they use."""

from __future__ import annotations

import importlib
import pkgutil

import batch_emulator
from batch_emulator.errors import BatchError, NotFound

#: Errors whose class name is not their wire code (a general base, or a second cause of a code).
NAMED_OTHERWISE = {
    "ArmAuthenticationFailed": "AuthenticationFailed",
    "BadRequest": "InvalidInput",
    "Conflict": "OperationInvalidForCurrentState",
    "ExtensionNotFound": "ResourceNotFound",
    "Forbidden": "InsufficientAccountPermissions",
    "NotFound": "ResourceNotFound",
    "NotModified": "ConditionNotMet",
    "OperationNotImplemented": "NotImplemented",
    "UnsupportedImageReference": "InvalidPropertyValue",
}


def _all_errors() -> dict[str, type[BatchError]]:
    for module in pkgutil.walk_packages(batch_emulator.__path__, "batch_emulator."):
        importlib.import_module(module.name)
    found: dict[str, type[BatchError]] = {}
    pending: list[type[BatchError]] = [BatchError]
    while pending:
        for subclass in pending.pop().__subclasses__():
            if subclass.__module__.startswith("batch_emulator."):
                found[subclass.__name__] = subclass
            pending.append(subclass)
    return found


def test_every_error_answers_with_its_own_name_unless_it_says_otherwise() -> None:
    errors = _all_errors()

    assert len(errors) > 60
    assert {name: error.code for name, error in errors.items() if error.code != name} == NAMED_OTHERWISE


def test_an_error_inherits_status_and_message_and_takes_its_own_name_as_code() -> None:
    class WidgetNotFound(NotFound, message="The specified widget does not exist."):
        """A test error."""

    class WidgetGone(WidgetNotFound, status=410, code="WidgetWasDeleted"):
        """Another."""

    assert (WidgetNotFound.code, WidgetNotFound.status) == ("WidgetNotFound", 404)
    assert WidgetNotFound().message == "The specified widget does not exist."
    assert (WidgetGone.code, WidgetGone.status, WidgetGone.default_message) == (
        "WidgetWasDeleted",
        410,
        "The specified widget does not exist.",
    )
