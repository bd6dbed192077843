"""Task ``exitConditions``: which ``exitOptions`` (job action, dependency action) a completed task's outcome selects.

Batch's rules (``ExitConditions`` in the REST reference): an exit code listed in ``exitCodes`` or covered by
``exitCodeRanges`` wins (even over a later file upload error); otherwise a file upload error takes
``fileUploadError``, a task that could not start (resource files) takes ``preProcessingError``, and any other
failure takes ``default``. Unset options default to ``none``/``satisfy`` for exit code 0 and
``terminate``/``block`` for every other exit condition. Pure functions: no state, no HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.models.validation import optional_enum, optional_list, require_object

if TYPE_CHECKING:
    from batch_emulator.models.tasks import Task

JOB_ACTIONS = ("none", "disable", "terminate")
DEPENDENCY_ACTIONS = ("satisfy", "block")
#: ``failureInfo.code`` prefix of a failed output file upload (see ``batch_emulator.node.outputs``).
UPLOAD_FAILURE_PREFIX = "FileUpload"
#: Failures without an exit code that are not pre-processing errors (the task was ended, or timed out).
NOT_PREPROCESSING = frozenset({"TaskEnded", "MaxWallClockTimeExpiry"})
_OPTION_GROUPS = ("preProcessingError", "fileUploadError", "default")


@dataclass(frozen=True)
class ExitOptions:
    """What Batch does when a task completes with one exit condition."""

    job_action: str
    dependency_action: str


SUCCESS_DEFAULT = ExitOptions("none", "satisfy")
FAILURE_DEFAULT = ExitOptions("terminate", "block")


def validate(conditions: object) -> dict[str, Any]:
    """Check an ``exitConditions`` body (job-independent rules).

    Returns:
        The body, with action names lower-cased as the service stores them.

    Raises:
        BatchError: a malformed mapping, range or action (400).
    """
    data = require_object(conditions, "exitConditions")
    result: dict[str, Any] = dict(data)
    codes = []
    for index, item in enumerate(optional_list(data, "exitCodes", path="exitConditions.exitCodes")):
        path = f"exitConditions.exitCodes[{index}]"
        entry = require_object(item, path)
        _require_int(entry, "code", path)
        codes.append({**entry, "exitOptions": _validate_options(entry.get("exitOptions"), f"{path}.exitOptions")})
    if codes:
        result["exitCodes"] = codes
    ranges = []
    for index, item in enumerate(optional_list(data, "exitCodeRanges", path="exitConditions.exitCodeRanges")):
        path = f"exitConditions.exitCodeRanges[{index}]"
        entry = require_object(item, path)
        start, end = _require_int(entry, "start", path), _require_int(entry, "end", path)
        if end < start:
            raise InvalidPropertyValue(f"{path}.end", end, "The end of a range must not be less than its start.")
        ranges.append({**entry, "exitOptions": _validate_options(entry.get("exitOptions"), f"{path}.exitOptions")})
    if ranges:
        result["exitCodeRanges"] = ranges
    for name in _OPTION_GROUPS:
        if data.get(name) is not None:
            result[name] = _validate_options(data[name], f"exitConditions.{name}")
    return result


def _require_int(entry: dict[str, Any], name: str, path: str) -> int:
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPropertyValue(f"{path}.{name}", value, "The value must be an integer.")
    return value


def _validate_options(options: object, path: str) -> dict[str, Any]:
    if options is None:
        raise InvalidPropertyValue(path, None, "exitOptions is required.")
    data = dict(require_object(options, path))
    for name, allowed in (("jobAction", JOB_ACTIONS), ("dependencyAction", DEPENDENCY_ACTIONS)):
        if data.get(name) is not None:
            data[name] = optional_enum(data, name, allowed, allowed[0], path=f"{path}.{name}")
    return data


def all_options(conditions: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every ``exitOptions`` object in validated conditions, with its property path."""
    found = [
        (f"exitConditions.exitCodes[{i}].exitOptions", item["exitOptions"])
        for i, item in enumerate(conditions.get("exitCodes") or [])
    ]
    found += [
        (f"exitConditions.exitCodeRanges[{i}].exitOptions", item["exitOptions"])
        for i, item in enumerate(conditions.get("exitCodeRanges") or [])
    ]
    found += [(f"exitConditions.{name}", conditions[name]) for name in _OPTION_GROUPS if conditions.get(name)]
    return found


def check_against_job(conditions: dict[str, Any], *, uses_dependencies: bool, on_task_failure: str) -> None:
    """The rules that depend on the job: ``dependencyAction`` needs task dependencies, ``jobAction`` needs
    ``onTaskFailure: performexitoptionsjobaction`` (both 400 ``InvalidPropertyValue``, as documented).

    Raises:
        InvalidPropertyValue: an action the job cannot take.
    """
    for path, options in all_options(conditions):
        if options.get("dependencyAction") is not None and not uses_dependencies:
            raise InvalidPropertyValue(
                f"{path}.dependencyAction",
                options["dependencyAction"],
                "dependencyAction requires a job with usesTaskDependencies set to true.",
            )
        if options.get("jobAction") is not None and on_task_failure != "performexitoptionsjobaction":
            raise InvalidPropertyValue(
                f"{path}.jobAction",
                options["jobAction"],
                "jobAction requires a job whose onTaskFailure is performexitoptionsjobaction.",
            )


def select(
    conditions: dict[str, Any] | None, *, exit_code: int | None, result: str | None, failure_code: str | None
) -> ExitOptions:
    """The exit options a completed task's outcome selects.

    Args:
        conditions: The task's validated ``exitConditions`` (None: none given).
        exit_code: The process exit code (None: the process never ran or never exited).
        result: ``success`` or ``failure``.
        failure_code: ``failureInfo.code`` of a failure.

    Returns:
        The job action and the dependency action, defaults filled in.
    """
    succeeded = result == "success"
    fallback = SUCCESS_DEFAULT if succeeded else FAILURE_DEFAULT
    if not conditions:
        return fallback
    by_code = _by_exit_code(conditions, exit_code) if exit_code is not None else None
    if by_code is not None:  # a listed exit code wins; its unset actions default by that code
        return _fill(by_code, SUCCESS_DEFAULT if exit_code == 0 else FAILURE_DEFAULT)
    if succeeded:
        return fallback
    if failure_code is not None and failure_code.startswith(UPLOAD_FAILURE_PREFIX):
        chosen = conditions.get("fileUploadError") or conditions.get("default")
    elif exit_code is None and failure_code not in NOT_PREPROCESSING:
        chosen = conditions.get("preProcessingError") or conditions.get("default")
    else:
        chosen = conditions.get("default")
    return fallback if chosen is None else _fill(chosen, FAILURE_DEFAULT)


def _fill(options: dict[str, Any], default: ExitOptions) -> ExitOptions:
    return ExitOptions(
        str(options.get("jobAction") or default.job_action),
        str(options.get("dependencyAction") or default.dependency_action),
    )


def _by_exit_code(conditions: dict[str, Any], exit_code: int) -> dict[str, Any] | None:
    for item in conditions.get("exitCodes") or []:
        if item.get("code") == exit_code:
            options: dict[str, Any] = item["exitOptions"]
            return options
    for item in conditions.get("exitCodeRanges") or []:
        if item["start"] <= exit_code <= item["end"]:
            options = item["exitOptions"]
            return options
    return None


def for_task(task: Task) -> ExitOptions:
    """The exit options a completed task's outcome selects (its body is parsed only if it has conditions)."""
    conditions = task.body().get("exitConditions") if '"exitConditions"' in task.spec else None
    failure_code = task.failure_info.get("code") if task.failure_info else None
    return select(conditions, exit_code=task.exit_code, result=task.result, failure_code=failure_code)
