"""Compute nodes: the state of one emulated VM of a pool."""

from __future__ import annotations

import hashlib
from collections import deque
from typing import TYPE_CHECKING, Any

from batch_emulator.errors import NodeNotFound

if TYPE_CHECKING:
    from batch_emulator.models.node_users import NodeUser
    from batch_emulator.models.pools import Pool
    from batch_emulator.models.tasks import Task

#: Lines of a node's agent log kept in memory.
MAX_EVENTS = 500
#: States in which a node takes new tasks (when it has free slots and is not leaving the pool).
SCHEDULABLE_STATES = frozenset({"idle", "running"})
#: Node states counted by ``/nodecounts`` (wire name per state).
COUNTED_STATES = {
    "creating": "creating",
    "idle": "idle",
    "offline": "offline",
    "preempted": "preempted",
    "rebooting": "rebooting",
    "reimaging": "reimaging",
    "running": "running",
    "starting": "starting",
    "starttaskfailed": "startTaskFailed",
    "leavingpool": "leavingPool",
    "unknown": "unknown",
    "unusable": "unusable",
    "waitingforstarttask": "waitingForStartTask",
    "deallocated": "deallocated",
    "deallocating": "deallocating",
    "upgradingos": "upgradingOS",
}


def make_node_id(pool_id: str, pool_seq: int, number: int, dedicated: bool) -> str:
    """Return a node id shaped like Batch's (``tvmps_<64 hex>_d`` for dedicated, ``_p`` for spot)."""
    digest = hashlib.sha256(f"{pool_id}:{pool_seq}:{number}".encode()).hexdigest()
    return f"tvmps_{digest}_{'d' if dedicated else 'p'}"


class Node:
    """One compute node of a pool."""

    __slots__ = (
        "allocation_time",
        "busy_workers",
        "errors",
        "events",
        "id",
        "ip_address",
        "is_dedicated",
        "last_boot_time",
        "number",
        "operation",
        "operation_option",
        "pool",
        "removed",
        "removing",
        "scheduling_state",
        "seq",
        "slots_used",
        "start_task_info",
        "state",
        "state_time",
        "step",
        "tasks",
        "total_tasks_run",
        "total_tasks_succeeded",
        "users",
    )

    def __init__(self, node_id: str, pool: Pool, seq: int, *, dedicated: bool, ip_address: str, now: float) -> None:
        """Create a node in the ``creating`` state."""
        self.id = node_id
        self.pool = pool
        self.seq = seq
        self.is_dedicated = dedicated
        self.ip_address = ip_address
        self.state = "creating"
        self.state_time = now
        self.allocation_time = now
        self.last_boot_time: float | None = None
        self.slots_used = 0
        self.tasks: set[Task] = set()
        self.total_tasks_run = 0
        self.total_tasks_succeeded = 0
        self.start_task_info: dict[str, Any] | None = None
        self.errors: list[dict[str, Any]] = []
        self.removing: str | None = None  # the deallocation option while the node leaves its pool
        self.busy_workers = 0  # processes of this node still running in the worker pool
        self.step = 0  # bumps on every lifecycle change; stale timers compare it
        self.removed = False
        self.number = 0  # the node's position in its pool (1, 2, ...): picks its remote login port
        self.scheduling_state = "enabled"  # "disabled": no new tasks (disable node scheduling)
        self.operation: str | None = None  # reboot/reimage/deallocate/start waiting to be carried out
        self.operation_option = "requeue"  # what the pending operation does with running tasks
        self.users: dict[str, NodeUser] = {}  # node user accounts by lower-case name
        self.events: deque[tuple[float, str]] = deque(maxlen=MAX_EVENTS)  # the agent log (time, line)
        self.log(now, "node allocated")

    @property
    def free_slots(self) -> int:
        """Scheduling slots not in use."""
        return self.pool.slots_per_node - self.slots_used

    def schedulable(self) -> bool:
        """Whether the scheduler may place a task here now."""
        return self.accepts_tasks() and self.free_slots > 0

    def accepts_tasks(self) -> bool:
        """Whether the node may take tasks at all (ready, scheduling enabled, not leaving the pool)."""
        return self.state in SCHEDULABLE_STATES and self.removing is None and self.scheduling_state == "enabled"

    def set_state(self, state: str, now: float) -> None:
        """Enter ``state`` (and invalidate pending lifecycle timers)."""
        if state != self.state:
            self.log(now, f"node state {self.state} -> {state}")
            self.state = state
            self.state_time = now
        self.step += 1

    def log(self, now: float, line: str) -> None:
        """Add a line to the node's agent log (kept in memory, uploaded by ``uploadbatchservicelogs``)."""
        self.events.append((now, line))

    def refresh_busy_state(self, now: float) -> None:
        """Switch between ``idle`` and ``running`` after tasks arrive or leave."""
        if self.state in SCHEDULABLE_STATES:
            wanted = "running" if self.tasks else "idle"
            if wanted != self.state:
                self.state = wanted
                self.state_time = now


def find_node(pool: Pool, node_id: str) -> Node:
    """Return a node of a pool by id (case-insensitive).

    Raises:
        NodeNotFound: no such node.
    """
    node = pool.nodes.get(node_id.lower())
    if node is None:
        raise NodeNotFound()
    return node
