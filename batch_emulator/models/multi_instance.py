"""Multi-instance tasks (``multiInstanceSettings``): one primary and ``numberOfInstances - 1`` subtasks on
distinct nodes of a pool with ``enableInterNodeCommunication``.

Every instance downloads ``commonResourceFiles`` into its task directory and runs the coordination command
line; once all of them succeeded, the primary runs the task's command line. The task's outcome is the
primary's; any failed coordination command fails the task (which is then retried as a whole, as in Batch).
Subtask records (ids ``1`` … ``n-1``) are what ``GET …/subtasksinfo`` lists. The task waits (``active``)
until the pool has enough free nodes. State only; the scheduler and the executor drive the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.models.validation import (
    optional_int,
    optional_list,
    require_object,
    require_str,
    validate_resource_files,
)

if TYPE_CHECKING:
    from batch_emulator.models.nodes import Node
    from batch_emulator.models.pools import Pool
    from batch_emulator.models.tasks import RunOutcome, Task

#: Port of ``AZ_BATCH_MASTER_NODE`` (``<primary IP>:6000``), as the service sets it.
MASTER_PORT = 6000


def validate(value: object, required_slots: int) -> dict[str, Any]:
    """Check ``multiInstanceSettings`` (the task's ``requiredSlots`` must be 1) and fill ``numberOfInstances``.

    Raises:
        BatchError: an invalid property (400).
    """
    path = "multiInstanceSettings"
    if required_slots != 1:
        raise InvalidPropertyValue("requiredSlots", required_slots, "A multi-instance task must require 1 slot.")
    data = dict(require_object(value, path))
    data["numberOfInstances"] = optional_int(data, "numberOfInstances", 1, minimum=1, path=f"{path}.numberOfInstances")
    require_str(data, "coordinationCommandLine", path=f"{path}.coordinationCommandLine")
    files = optional_list(data, "commonResourceFiles", path=f"{path}.commonResourceFiles")
    validate_resource_files(files, f"{path}.commonResourceFiles")
    return data


def schedulable_on(pool: Pool) -> bool:
    """Whether the pool can run multi-instance tasks at all: inter-node communication and one slot per node.

    On any other pool the task is never scheduled and stays ``active``, as the Batch documentation says.
    """
    return bool(pool.spec.get("enableInterNodeCommunication")) and pool.slots_per_node == 1


def settings(task: Task) -> dict[str, Any] | None:
    """The task's ``multiInstanceSettings`` (None for an ordinary task; the body is parsed only if present)."""
    if '"multiInstanceSettings"' not in task.spec:
        return None
    value: dict[str, Any] | None = task.body().get("multiInstanceSettings")
    return value


def choose_nodes(nodes: list[Node], slots: int, count: int, fill_type: str) -> list[Node] | None:
    """``count`` distinct nodes with ``slots`` free each (the primary first), or None if the pool has too few."""
    fits = [node for node in nodes if node.accepts_tasks() and node.free_slots >= slots]
    if len(fits) < count:
        return None
    fits.sort(key=lambda n: (n.free_slots if fill_type == "pack" else -n.free_slots, n.seq))
    return fits[:count]


@dataclass
class Subtask:
    """One subtask's record (``BatchSubtask``)."""

    id: int
    node: Node
    state: str
    state_time: float
    prev_state: str | None = None
    prev_state_time: float | None = None
    start_time: float | None = None
    end_time: float | None = None
    exit_code: int | None = None
    result: str | None = None
    failure_info: dict[str, Any] | None = None

    def set_state(self, state: str, now: float) -> None:
        """Enter ``state``, remembering the previous one."""
        self.prev_state, self.prev_state_time = self.state, self.state_time
        self.state, self.state_time = state, now


@dataclass
class MultiInstanceRun:
    """The instances of one run of a multi-instance task: the subtask nodes it holds and their records."""

    token: int
    slots: int
    subtasks: list[Subtask] = field(default_factory=list)

    def hold(self, now: float) -> None:
        """Take the slots of every subtask node."""
        for subtask in self.subtasks:
            subtask.node.slots_used += self.slots
            subtask.node.refresh_busy_state(now)

    def release(self, outcomes: list[RunOutcome | None], now: float) -> None:
        """Free the subtask nodes and record each subtask's coordination outcome (None: it never ran)."""
        for subtask, outcome in zip(self.subtasks, outcomes + [None] * len(self.subtasks), strict=False):
            subtask.node.slots_used -= self.slots
            subtask.node.refresh_busy_state(now)
            if outcome is not None:
                subtask.start_time, subtask.end_time = outcome.start_time, outcome.end_time
                subtask.exit_code, subtask.result = outcome.exit_code, outcome.result
                subtask.failure_info = outcome.failure_info
            else:
                subtask.result = "failure"
            subtask.set_state("completed", now)


def new_run(token: int, slots: int, subtask_nodes: list[Node], now: float) -> MultiInstanceRun:
    """A run holding ``subtask_nodes`` (subtask ids from 1), its subtasks ``running``."""
    run = MultiInstanceRun(
        token, slots, [Subtask(i, node, "running", now, start_time=now) for i, node in enumerate(subtask_nodes, 1)]
    )
    run.hold(now)
    return run


def environment(nodes: list[Node], index: int, shared_dir: str) -> list[dict[str, str]]:
    """The multi-instance variables of instance ``index`` (0 = primary) on ``nodes`` (primary first)."""
    addresses = [node.ip_address for node in nodes]
    return [
        {"name": "AZ_BATCH_HOST_LIST", "value": ",".join(addresses)},
        {"name": "AZ_BATCH_NODE_LIST", "value": ";".join(addresses)},
        {"name": "AZ_BATCH_MASTER_NODE", "value": f"{addresses[0]}:{MASTER_PORT}"},
        {"name": "AZ_BATCH_IS_CURRENT_NODE_MASTER", "value": "true" if index == 0 else "false"},
        {"name": "AZ_BATCH_TASK_SHARED_DIR", "value": shared_dir},
    ]
