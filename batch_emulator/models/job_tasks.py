"""Job manager, job preparation and job release tasks: their validation and their per-node run records.

- The **job manager** is an ordinary task of the job, added when the job is created and queued first.
  ``killJobOnCompletion`` (default true) terminates the job with reason ``JMComplete`` once it completes;
  ``runExclusive`` (default true) makes it take every slot of its node; ``allowLowPriorityNode`` false keeps it
  on dedicated nodes.
- The **preparation task** runs on a node before the first task of the job there; the tasks assigned to the
  node meanwhile wait in ``preparing``. If it fails (after its retries) and ``waitForSuccess`` is true (the
  default), those tasks go back to ``active`` and the node gets no more tasks of the job.
- The **release task** runs, when the job ends (terminate, delete, all tasks complete), on every node that ran
  the preparation task; the job stays ``terminating``/``deleting`` until they are done.

The scheduler drives the runs; this module keeps their state (no HTTP, no processes).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import Conflict, InvalidPropertyValue
from batch_emulator.models.containers import validate_container_settings
from batch_emulator.models.validation import (
    optional_bool,
    optional_duration_seconds,
    optional_int,
    optional_list,
    require_object,
    require_str,
    validate_environment,
    validate_id,
    validate_resource_files,
)
from batch_emulator.timefmt import UNLIMITED_DURATION

if TYPE_CHECKING:
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.nodes import Node
    from batch_emulator.models.tasks import RunOutcome, Task

PREPARATION_ID = "jobpreparation"
RELEASE_ID = "jobrelease"
RELEASE_MAX_WALL = "PT15M"
DEFAULT_RETENTION = "P7D"
_AUTO_USER = {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
#: Job manager properties that are not properties of the task it becomes.
_MANAGER_ONLY = ("killJobOnCompletion", "runExclusive", "allowLowPriorityNode")


class JobPreparationTaskOrReleaseTaskNotSpecified(
    Conflict, message="The specified job does not have a job preparation or a job release task."
):
    """``jobpreparationandreleasetaskstatus`` on a job with neither task."""


class TaskIdSameAsJobPreparationTask(Conflict, message="The specified task id is same as the job preparation task."):
    """A task whose id is the job preparation task's."""


class TaskIdSameAsJobReleaseTask(Conflict, message="The specified task id is same as the job release task."):
    """A task whose id is the job release task's."""


# --- validation ----------------------------------------------------------------------------------------------
def _validate_common(body: dict[str, Any], path: str) -> None:
    require_str(body, "commandLine", path=f"{path}.commandLine")
    files = optional_list(body, "resourceFiles", path=f"{path}.resourceFiles")
    validate_resource_files(files, f"{path}.resourceFiles")
    settings = optional_list(body, "environmentSettings", path=f"{path}.environmentSettings")
    validate_environment(settings, f"{path}.environmentSettings")
    constraints = body.get("constraints")
    if constraints is not None:
        constraints = require_object(constraints, f"{path}.constraints")
        optional_duration_seconds(constraints, "maxWallClockTime", path=f"{path}.constraints.maxWallClockTime")
        optional_int(constraints, "maxTaskRetryCount", 0, minimum=-1, path=f"{path}.constraints.maxTaskRetryCount")
    if body.get("containerSettings") is not None:
        validate_container_settings(body["containerSettings"], f"{path}.containerSettings")


def validate_manager(value: object, job_retries: int = 0) -> dict[str, Any]:
    """Check a ``jobManagerTask`` and fill its defaults as the service shows them.

    Args:
        value: The ``jobManagerTask`` body.
        job_retries: The job's ``constraints.maxTaskRetryCount``: the manager's default, as the Azure CLI's
            recording shows (a job with 5 retries gets a manager with 5).

    Raises:
        BatchError: a missing id or command line, or an invalid property (400).
    """
    body = dict(require_object(value, "jobManagerTask"))
    validate_id(body.get("id"), "jobManagerTask.id")
    _validate_common(body, "jobManagerTask")
    constraints = dict(body.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("retentionTime", DEFAULT_RETENTION)
    constraints.setdefault("maxTaskRetryCount", job_retries)
    body["constraints"] = constraints
    body["requiredSlots"] = optional_int(body, "requiredSlots", 1, minimum=1, path="jobManagerTask.requiredSlots")
    body.setdefault("userIdentity", _AUTO_USER)
    for name in _MANAGER_ONLY:
        body[name] = optional_bool(body, name, True, path=f"jobManagerTask.{name}")
    return body


def validate_preparation(value: object) -> dict[str, Any]:
    """Check a ``jobPreparationTask`` and fill its defaults as the service shows them."""
    body = dict(require_object(value, "jobPreparationTask"))
    body["id"] = validate_id(body.get("id") or PREPARATION_ID, "jobPreparationTask.id")
    _validate_common(body, "jobPreparationTask")
    constraints = dict(body.get("constraints") or {})
    constraints.setdefault("maxWallClockTime", UNLIMITED_DURATION)
    constraints.setdefault("retentionTime", DEFAULT_RETENTION)
    constraints.setdefault("maxTaskRetryCount", 0)
    body["constraints"] = constraints
    body.setdefault("userIdentity", _AUTO_USER)
    body["waitForSuccess"] = optional_bool(body, "waitForSuccess", True, path="jobPreparationTask.waitForSuccess")
    body["rerunOnNodeRebootAfterSuccess"] = optional_bool(
        body, "rerunOnNodeRebootAfterSuccess", True, path="jobPreparationTask.rerunOnNodeRebootAfterSuccess"
    )
    return body


def validate_release(value: object, preparation: dict[str, Any] | None) -> dict[str, Any]:
    """Check a ``jobReleaseTask`` (it needs a preparation task) and fill its defaults.

    Raises:
        BatchError: no preparation task, a clashing id, or an invalid property (400).
    """
    body = dict(require_object(value, "jobReleaseTask"))
    if preparation is None:
        raise InvalidPropertyValue(
            "jobReleaseTask", "…", "A job release task requires a job preparation task on the same job."
        )
    body["id"] = validate_id(body.get("id") or RELEASE_ID, "jobReleaseTask.id")
    if body["id"].lower() == str(preparation["id"]).lower():
        raise InvalidPropertyValue("jobReleaseTask.id", body["id"], "It must differ from the preparation task's id.")
    _validate_common(body, "jobReleaseTask")
    optional_duration_seconds(body, "maxWallClockTime", path="jobReleaseTask.maxWallClockTime")
    body.setdefault("maxWallClockTime", RELEASE_MAX_WALL)
    body.setdefault("retentionTime", DEFAULT_RETENTION)
    body.setdefault("userIdentity", _AUTO_USER)
    return body


def check_manager_id(spec: dict[str, Any]) -> None:
    """Refuse a job whose job manager task has the preparation or release task's id.

    Raises:
        InvalidPropertyValue: the ids clash.
    """
    manager = spec.get("jobManagerTask")
    if not manager:
        return
    for name in ("jobPreparationTask", "jobReleaseTask"):
        other = spec.get(name)
        if other and str(other["id"]).lower() == str(manager["id"]).lower():
            raise InvalidPropertyValue("jobManagerTask.id", manager["id"], f"It must differ from the {name} id.")


def manager_task_body(manager: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The id and task body of the task a job manager becomes."""
    body = {name: value for name, value in manager.items() if name not in _MANAGER_ONLY and name != "id"}
    return str(manager["id"]), body


def check_task_id(job: Job, task_id: str) -> None:
    """Refuse a task id that is the job's preparation or release task id.

    Raises:
        Conflict: ``TaskIdSameAsJobPreparationTask`` or ``TaskIdSameAsJobReleaseTask``.
    """
    preparation, release = job.spec.get("jobPreparationTask"), job.spec.get("jobReleaseTask")
    if preparation and str(preparation["id"]).lower() == task_id.lower():
        raise TaskIdSameAsJobPreparationTask()
    if release and str(release["id"]).lower() == task_id.lower():
        raise TaskIdSameAsJobReleaseTask()


# --- runs on nodes -------------------------------------------------------------------------------------------
@dataclass
class NodeRun:
    """One preparation or release task on one node (``executionInfo`` of the status list)."""

    pool_id: str
    node_id: str
    start_time: float
    state: str = "running"
    end_time: float | None = None
    exit_code: int | None = None
    result: str | None = None
    failure_info: dict[str, Any] | None = None
    retry_count: int = 0
    last_retry_time: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)  # stops its process

    def finish(self, outcome: RunOutcome) -> None:
        """Record the outcome of the run."""
        self.start_time = outcome.start_time
        self.end_time = outcome.end_time
        self.exit_code = outcome.exit_code
        self.result = outcome.result
        self.failure_info = outcome.failure_info
        self.state = "completed"


@dataclass
class JobTaskRuns:
    """The preparation and release runs of one job, and the tasks waiting for a node's preparation."""

    preparation: dict[tuple[str, str], NodeRun] = field(default_factory=dict)
    release: dict[tuple[str, str], NodeRun] = field(default_factory=dict)
    parked: dict[tuple[str, str], list[tuple[Task, int]]] = field(default_factory=dict)
    release_started: bool = False

    def blocks(self, node: Node, wait_for_success: bool) -> bool:
        """Whether the node may not take tasks of the job (its preparation failed and must succeed)."""
        run = self.preparation.get((node.pool.id, node.id))
        return bool(wait_for_success and run and run.state == "completed" and run.result != "success")


def is_manager(task: Task) -> bool:
    """Whether the task is its job's job manager task."""
    manager = task.job.spec.get("jobManagerTask")
    return manager is not None and str(manager["id"]).lower() == task.key


def status_entries(job: Job) -> list[tuple[NodeRun, NodeRun | None]]:
    """The (preparation, release) runs per node, in the order the nodes first ran the preparation task.

    Raises:
        JobPreparationTaskOrReleaseTaskNotSpecified: the job has neither task.
    """
    if not job.spec.get("jobPreparationTask") and not job.spec.get("jobReleaseTask"):
        raise JobPreparationTaskOrReleaseTaskNotSpecified()
    runs = job.side_runs
    return [(run, runs.release.get(place)) for place, run in runs.preparation.items()]
