"""Task dependencies (``dependsOn.taskIds`` and ``taskIdRanges`` on a job with ``usesTaskDependencies``).

A task that depends on others stays ``active`` but out of its job's queue until every task it depends on
has *satisfied* it: completed successfully, or failed with an exit condition whose ``dependencyAction`` is
``satisfy``. A task it depends on need not exist yet (the SDK adds large collections in parallel chunks):
it counts as unsatisfied until it is added and completes.

Each waiting task holds a count of unsatisfied ids. Waiters are indexed by the id they wait for (ranges are
expanded up to :data:`RANGE_EXPANSION_LIMIT` ids; wider ranges are kept in a short list checked on each
numeric completion), so a completion touches only the tasks that depend on it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import BadRequest, InvalidPropertyValue
from batch_emulator.models import exit_conditions
from batch_emulator.models.validation import id_key, optional_list, require_object, validate_id

if TYPE_CHECKING:
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.tasks import Task

#: Most ids of one range indexed one by one; a wider range is checked against every numeric completion.
RANGE_EXPANSION_LIMIT = 10_000
#: The stored length limit of ``taskIds`` (the combined length of the ids).
MAX_TASK_IDS_CHARS = 64_000
#: Most ranges of one task (the limit behind ``TaskDependencyRangesTooLong``; the service's exact number is
#: not documented).
MAX_RANGES = 1_000


class TaskDependenciesNotSpecifiedOnJob(
    BadRequest,
    message="A task was specified as depending on other tasks, but the job did not specify that it would use "
    "task dependencies.",
):
    """``dependsOn`` on a job created without ``usesTaskDependencies``."""


class TaskDependencyListTooLong(
    BadRequest,
    message="A task was specified as depending on other tasks, but the list of dependencies was too long to be "
    "stored. Consider using task id ranges instead.",
):
    """``dependsOn.taskIds`` longer than 64,000 characters in total."""


class TaskDependencyRangesTooLong(
    BadRequest,
    message="A task was specified as depending on multiple ranges of task ids, and the list of ranges was too long "
    "to be stored.",
):
    """Too many ``dependsOn.taskIdRanges``."""


def validate(depends_on: object) -> dict[str, Any]:
    """Check a ``dependsOn`` body (job-independent rules).

    Raises:
        BatchError: malformed ids or ranges (400), a list too long to store.
    """
    data = require_object(depends_on, "dependsOn")
    ids = optional_list(data, "taskIds", path="dependsOn.taskIds")
    for index, value in enumerate(ids):
        validate_id(value, f"dependsOn.taskIds[{index}]")
    if sum(len(value) for value in ids) > MAX_TASK_IDS_CHARS:
        raise TaskDependencyListTooLong()
    ranges = optional_list(data, "taskIdRanges", path="dependsOn.taskIdRanges")
    if len(ranges) > MAX_RANGES:
        raise TaskDependencyRangesTooLong()
    for index, item in enumerate(ranges):
        path = f"dependsOn.taskIdRanges[{index}]"
        entry = require_object(item, path)
        for name in ("start", "end"):
            value = entry.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidPropertyValue(f"{path}.{name}", value, "The value must be a non-negative integer.")
        if entry["end"] < entry["start"]:
            raise InvalidPropertyValue(
                f"{path}.end", entry["end"], "The end of a range must not be less than its start."
            )
    return data


def numeric_id(key: str) -> int | None:
    """The number a task id stands for in ranges ('12' → 12; '012', 'a1' → None)."""
    if key.isascii() and key.isdigit() and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class DependencyGraph:
    """The dependency state of one job."""

    __slots__ = ("_by_id", "_wide", "job", "satisfied", "waiting")

    def __init__(self, job: Job) -> None:
        """Create an empty graph for ``job``."""
        self.job = job
        self.satisfied: set[str] = set()  # keys of tasks that satisfy their dependents
        self.waiting: dict[Task, int] = {}  # task → unsatisfied ids
        self._by_id: defaultdict[str, list[Task]] = defaultdict(list)
        self._wide: list[tuple[int, int, Task]] = []

    def register(self, task: Task, depends_on: dict[str, Any]) -> bool:
        """Index a new task's dependencies.

        Returns:
            True when the task may be queued now (everything it depends on is satisfied).
        """
        ranges = _merge([(int(item["start"]), int(item["end"])) for item in depends_on.get("taskIdRanges") or []])
        ids = set()
        for value in depends_on.get("taskIds") or []:
            key = id_key(value)
            number = numeric_id(key)
            if number is None or not any(start <= number <= end for start, end in ranges):
                ids.add(key)
        unsatisfied = sum(1 for key in ids if key not in self.satisfied)
        for key in ids:
            if key not in self.satisfied:
                self._by_id[key].append(task)
        for start, end in ranges:
            unsatisfied += end - start + 1 - self._satisfied_in(start, end)
            if end - start + 1 > RANGE_EXPANSION_LIMIT:
                self._wide.append((start, end, task))
                continue
            for number in range(start, end + 1):
                key = str(number)
                if key not in self.satisfied:
                    self._by_id[key].append(task)
        if unsatisfied == 0:
            return True
        self.waiting[task] = unsatisfied
        return False

    def _satisfied_in(self, start: int, end: int) -> int:
        if end - start + 1 <= len(self.satisfied):
            return sum(1 for number in range(start, end + 1) if str(number) in self.satisfied)
        count = 0
        for key in self.satisfied:
            number = numeric_id(key)
            if number is not None and start <= number <= end:
                count += 1
        return count

    def is_waiting(self, task: Task) -> bool:
        """Whether the task still waits for what it depends on."""
        return task in self.waiting

    def satisfy(self, key: str) -> list[Task]:
        """Record that the task with id key ``key`` satisfies its dependents.

        Returns:
            The dependents that no longer wait (in the order they were added), ready to queue.
        """
        if key in self.satisfied:
            return []
        self.satisfied.add(key)
        released: list[Task] = []
        for task in self._by_id.pop(key, ()):
            self._decrement(task, released)
        number = numeric_id(key)
        if number is not None and self._wide:
            for start, end, task in self._wide:
                if start <= number <= end:
                    self._decrement(task, released)
            self._wide = [entry for entry in self._wide if entry[2] in self.waiting]
        released.sort(key=lambda task: task.seq)
        return released

    def _decrement(self, task: Task, released: list[Task]) -> None:
        left = self.waiting.get(task)
        if left is None:
            return
        if left > 1:
            self.waiting[task] = left - 1
            return
        del self.waiting[task]
        if not task.removed:
            released.append(task)

    def forget(self, task: Task) -> None:
        """Drop a deleted task (its index entries are skipped lazily)."""
        self.waiting.pop(task, None)


def uses_dependencies(job: Job) -> bool:
    """Whether the job was created with ``usesTaskDependencies: true``."""
    return bool(job.spec.get("usesTaskDependencies", False))


def satisfies_dependents(task: Task) -> bool:
    """Whether a completed task satisfies the tasks that depend on it (its ``dependencyAction``)."""
    return exit_conditions.for_task(task).dependency_action == "satisfy"


def rebuild(job: Job) -> None:
    """Rebuild a job's graph after a load and take the tasks that still wait out of its queue."""
    graph = job.deps
    if graph is None:
        return
    ordered = sorted(job.tasks.values(), key=lambda task: task.seq)
    for task in ordered:
        if task.state == "completed" and satisfies_dependents(task):
            graph.satisfied.add(task.key)
    for task in ordered:
        if task.state == "active" and '"dependsOn"' in task.spec:
            graph.register(task, task.body().get("dependsOn") or {})
    if graph.waiting:
        job.queue = type(job.queue)(task for task in job.queue if task not in graph.waiting)
