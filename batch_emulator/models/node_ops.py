"""Node operations: reboot, reimage, deallocate, start, and disable/enable scheduling (state rules, no HTTP).

A request changes the node's state at once (the SDK's pollers wait for ``rebooting``, ``reimaging``,
``deallocating`` or ``starting`` to end) and records the operation on the node; the scheduler carries it out
once the node's running tasks are dealt with (:mod:`batch_emulator.node_operations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batch_emulator.errors import (
    Conflict,
    NodeAlreadyInTargetSchedulingState,
    NodeBeingCreated,
    NodeBeingRebooted,
    NodeBeingReimaged,
    NodeBeingStarted,
    NodeStateUnusable,
    PoolBeingDeleted,
)
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.nodes import Node, find_node
from batch_emulator.models.pools import get_pool
from batch_emulator.models.validation import optional_enum, require_object

#: The signature every node operation shares (account, pool id, node id, body, now).
NodeAction = Callable[[Account, str, str, object, float], Node]
#: What a reboot, reimage or deallocation does with running tasks.
RUNNING_TASK_OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
#: What disabling scheduling does with running tasks.
DISABLE_SCHEDULING_OPTIONS = ("requeue", "terminate", "taskcompletion")
#: States from which a node can be rebooted or reimaged (the documented recovery of failed nodes included).
RESTARTABLE_STATES = frozenset({"idle", "running", "starttaskfailed", "unusable", "offline", "waitingforstarttask"})
#: States from which a node can be deallocated.
DEALLOCATABLE_STATES = frozenset({"idle", "running"})
#: The state errors Batch answers for a node that is in the middle of something.
_BUSY_ERRORS = {
    "creating": NodeBeingCreated,
    "starting": NodeBeingStarted,
    "rebooting": NodeBeingRebooted,
    "reimaging": NodeBeingReimaged,
    "unusable": NodeStateUnusable,
}


def operable_node(account: Account, pool_id: str, node_id: str) -> Node:
    """Return a node that is not leaving its pool.

    Raises:
        BatchError: unknown pool or node (404), pool being deleted or node leaving it (409).
    """
    pool = get_pool(account, pool_id)
    if pool.state == "deleting":
        raise PoolBeingDeleted()
    node = find_node(pool, node_id)
    if node.removing is not None or node.state == "leavingpool":
        raise Conflict("The specified node is leaving the pool.")
    return node


def check_state(node: Node, allowed: frozenset[str], what: str) -> None:
    """Refuse an operation on a node in another state, with the code Batch uses for that state.

    Raises:
        Conflict: ``NodeBeingCreated``/``NodeBeingStarted``/``NodeBeingRebooted``/``NodeBeingReimaged``/
            ``NodeStateUnusable``, or ``OperationInvalidForCurrentState`` naming the states that would do.
    """
    if node.state in allowed:
        return
    error = _BUSY_ERRORS.get(node.state)
    if error is not None:
        raise error()
    wanted = ", ".join(sorted(allowed))
    raise Conflict(f"A node can be {what} only when its state is one of: {wanted}; it is {node.state}.")


def _begin(account: Account, node: Node, operation: str, state: str, option: str, now: float) -> Node:
    node.operation = operation
    node.operation_option = option
    node.set_state(state, now)
    account.changes.nodes.add(node)
    account.pending_pools.add(node.pool)
    account.notify()
    return node


@dataclass(frozen=True)
class _Operation:
    """A node operation that deals with running tasks first: its name, option property and states."""

    name: str
    option_name: str
    allowed: frozenset[str]
    state: str  # the state the node enters at once
    what: str  # for the wrong-state message: "A node can be <what> only when ..."


_REBOOT = _Operation("reboot", "nodeRebootOption", RESTARTABLE_STATES, "rebooting", "rebooted")
_REIMAGE = _Operation("reimage", "nodeReimageOption", RESTARTABLE_STATES, "reimaging", "reimaged")
_DEALLOCATE = _Operation("deallocate", "nodeDeallocateOption", DEALLOCATABLE_STATES, "deallocating", "deallocated")


def _begin_operation(
    account: Account, pool_id: str, node_id: str, body: object, now: float, operation: _Operation
) -> Node:
    data = require_object(body)
    option = optional_enum(data, operation.option_name, RUNNING_TASK_OPTIONS, "requeue")
    node = operable_node(account, pool_id, node_id)
    check_state(node, operation.allowed, operation.what)
    return _begin(account, node, operation.name, operation.state, option, now)


def reboot_node(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Reboot a node (``nodeRebootOption`` says what happens to its running tasks); it runs its start task again.

    Raises:
        BatchError: unknown pool or node, invalid option (400), node in a state that cannot reboot (409).
    """
    return _begin_operation(account, pool_id, node_id, body, now, _REBOOT)


def reimage_node(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Reimage a node: like a reboot, and its directories are wiped.

    Raises:
        BatchError: unknown pool or node, invalid option (400), node in a state that cannot be reimaged (409).
    """
    return _begin_operation(account, pool_id, node_id, body, now, _REIMAGE)


def deallocate_node(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Deallocate an idle or running node (``deallocating`` → ``deallocated``); its disk is kept.

    Raises:
        BatchError: unknown pool or node, invalid option (400), node not idle or running (409).
    """
    return _begin_operation(account, pool_id, node_id, body, now, _DEALLOCATE)


def start_node(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Start a deallocated node (``starting`` → start task → ``idle``); the body is ignored (there is none).

    Raises:
        BatchError: unknown pool or node, node not deallocated (409).
    """
    node = operable_node(account, pool_id, node_id)
    check_state(node, frozenset({"deallocated"}), "started")
    return _begin(account, node, "start", "starting", "requeue", now)


def disable_scheduling(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Take a node out of scheduling; its running tasks are requeued, ended or left to finish.

    Raises:
        BatchError: unknown pool or node, invalid option (400), scheduling already disabled (409).
    """
    data = require_object(body)
    option = optional_enum(data, "nodeDisableSchedulingOption", DISABLE_SCHEDULING_OPTIONS, "requeue")
    node = operable_node(account, pool_id, node_id)
    if node.scheduling_state == "disabled":
        raise NodeAlreadyInTargetSchedulingState()
    node.scheduling_state = "disabled"
    for task in list(node.tasks):
        if option == "requeue":
            task_model.requeue(task, now)
        elif option == "terminate":
            task_model.end_task(task, now)
        account.pending_jobs.add(task.job)
    node.state_time = max(node.state_time, now)  # the node's ETag and Last-Modified follow its changes
    account.changes.nodes.add(node)
    account.notify()
    return node


def enable_scheduling(account: Account, pool_id: str, node_id: str, body: object, now: float) -> Node:
    """Let the scheduler place tasks on a node again (the body is ignored; there is none).

    Raises:
        BatchError: unknown pool or node, scheduling already enabled (409).
    """
    node = operable_node(account, pool_id, node_id)
    if node.scheduling_state == "enabled":
        raise NodeAlreadyInTargetSchedulingState()
    node.scheduling_state = "enabled"
    node.state_time = max(node.state_time, now)
    account.changes.nodes.add(node)
    account.notify()
    return node
