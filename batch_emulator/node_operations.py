"""Carrying out node operations and node setup on the scheduling thread.

A reboot, reimage or deallocation first deals with the node's running tasks as its option says (requeue
or end them at once, or let them finish), then waits for their processes to stop. A rebooted node boots
again (and runs its start task); a reimaged one also loses its directories first; a deallocated one
rests in ``deallocated`` until it is started. Booting nodes of pools with a ``mountConfiguration`` have
their mounts materialised by a worker before the start task (:mod:`batch_emulator.node.mounts`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from batch_emulator.execution import Completion
from batch_emulator.node.mounts import mount_all

if TYPE_CHECKING:
    from batch_emulator.allocation import NodeAllocator
    from batch_emulator.models.nodes import Node

#: Node directories created again after a reimage wipes them.
_NODE_DIRECTORIES = ("shared", "startup", "workitems", "fsmounts")
_MOUNTS_DIR = "fsmounts"


class NodeOperations:
    """Progresses the reboot/reimage/deallocate/start operations and the mount setup of one account's nodes."""

    def __init__(self, allocator: NodeAllocator) -> None:
        """Work with the allocator's timers, executor and janitor."""
        self._allocator = allocator

    def progress(self, node: Node, now: float) -> None:
        """Advance a node's pending operation (called whenever its pool is reconciled)."""
        operation = node.operation
        if operation is None:
            return
        allocator = self._allocator
        if operation == "start":
            node.operation = None
            allocator.account.changes.nodes.add(node)
            allocator._begin_boot(node, now)
            return
        allocator._evict(node, node.operation_option, now)
        if node.tasks or node.busy_workers:
            return  # its tasks finish (or their processes stop) first; their completions wake us again
        node.operation = None
        node.log(now, f"{operation} ({node.operation_option}): running tasks dealt with")
        node.errors = []
        allocator.account.changes.nodes.add(node)
        if operation == "deallocate":
            allocator._node_timer(node, allocator._phase_seconds(0.4), self._deallocated)
            return
        if operation == "reimage":
            self._wipe(node)
        allocator._node_timer(node, allocator._phase_seconds(0.6), self._rebooted)

    def _rebooted(self, node: Node, now: float) -> None:
        self._allocator._boot(node, now)

    def _deallocated(self, node: Node, now: float) -> None:
        node.set_state("deallocated", now)
        self._allocator.account.changes.nodes.add(node)

    def _wipe(self, node: Node) -> None:
        """Reimage: the node's directories go to the janitor and come back empty."""
        allocator = self._allocator
        root = allocator.account.node_root(node.pool.id, node.id)
        allocator._janitor.discard(root)
        for name in _NODE_DIRECTORIES:
            (root / name).mkdir(parents=True, exist_ok=True)

    # --- mounts ----------------------------------------------------------------------------------------------
    @staticmethod
    def needs_setup(node: Node) -> bool:
        """Whether the node's pool has mounts to materialise when the node boots."""
        return bool(node.pool.spec.get("mountConfiguration"))

    def begin_setup(self, node: Node, now: float) -> None:
        """Materialise the pool's mounts on a worker; :meth:`finish_setup` continues the boot."""
        allocator = self._allocator
        mounts: list[dict[str, Any]] = list(node.pool.spec.get("mountConfiguration") or [])
        target = allocator.account.node_root(node.pool.id, node.id) / _MOUNTS_DIR
        storage_endpoint = allocator.account.storage_endpoint
        cancel = threading.Event()
        allocator._start_task_cancels[node] = cancel
        node.busy_workers += 1

        def work(stop: threading.Event) -> list[dict[str, Any]]:
            return mount_all(mounts, target, stop, storage_endpoint)

        allocator._executor.submit_setup(node, node.step, work, cancel)

    def finish_setup(self, completion: Completion, now: float) -> None:
        """Continue a boot after its mounts: on to the start task, or ``unusable`` with the mount errors."""
        node = completion.node
        if node.removed or node.step != completion.token:
            return
        allocator = self._allocator
        if completion.errors:
            for error in completion.errors:
                node.log(now, f"mount failed: {error.get('message')}")
            node.errors = list(completion.errors)
            node.set_state("unusable", now)
            allocator.account.changes.nodes.add(node)
            return
        node.log(now, "mounts ready")
        allocator._ready(node, now)


def node_error(failure_info: dict[str, Any]) -> dict[str, Any]:
    """A node ``errors[]`` entry from a wire ``failureInfo`` (e.g. of a failed start task)."""
    error: dict[str, Any] = {"code": failure_info.get("code"), "message": failure_info.get("message")}
    if failure_info.get("details"):
        error["errorDetails"] = failure_info["details"]
    return error
