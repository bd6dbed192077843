"""Node allocation: pools grow and shrink through the Batch node states, and nodes run their start task.

A node goes ``creating`` → ``starting`` → (``waitingforstarttask`` while a blocking start task runs) →
``idle``/``running``, or ``starttaskfailed``. Shrinking pools, deleted pools and injected preemption
move nodes out again. Everything here runs on the scheduling thread under the account lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from batch_emulator.execution import Completion, TaskExecutor, start_task_spec
from batch_emulator.faults import FaultInjector
from batch_emulator.janitor import Janitor
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.nodes import Node, make_node_id
from batch_emulator.models.pools import Pool
from batch_emulator.models.stats import lifetime_of
from batch_emulator.models.tasks import RunOutcome
from batch_emulator.node_operations import NodeOperations, node_error
from batch_emulator.timefmt import iso, now_ts
from batch_emulator.timers import Timers
from batch_emulator.vmfamily import vm_family

#: Order in which a shrinking pool gives up nodes (least useful first).
REMOVAL_ORDER = {
    "creating": 0,
    "starting": 1,
    "unusable": 2,
    "starttaskfailed": 3,
    "waitingforstarttask": 4,
    "preempted": 5,
    "idle": 6,
    "running": 7,
}
# Shares of the allocation time spent in "creating" and in "starting".
_CREATING_SHARE = 0.6
_STARTING_SHARE = 0.4


class NodeAllocator:
    """Creates, boots and removes the nodes of every pool of an account."""

    def __init__(
        self,
        account: Account,
        *,
        executor: TaskExecutor,
        timers: Timers,
        janitor: Janitor,
        faults: FaultInjector,
        allocation_seconds: float,
    ) -> None:
        """Create the allocator.

        Args:
            account: The account.
            executor: Runs start tasks.
            timers: The scheduling thread's timers.
            janitor: Deletes the directories of removed nodes.
            faults: Fault injection (slow allocation).
            allocation_seconds: Time from ``creating`` to ``idle`` without a start task.
        """
        self.account = account
        self.batch_url = ""
        self._executor = executor
        self._timers = timers
        self._janitor = janitor
        self._faults = faults
        self._allocation_seconds = max(0.0, allocation_seconds)
        self._start_task_cancels: dict[Node, threading.Event] = {}
        self.operations = NodeOperations(self)

    def cancel_all(self) -> None:
        """Tell every running start task to stop (service shutdown)."""
        for event in self._start_task_cancels.values():
            event.set()

    def recover(self, now: float) -> None:
        """After a load: boot again the nodes that were not idle, and look at every pool."""
        for pool in self.account.pools.values():
            for node in pool.nodes.values():
                if node.removing is None and node.state not in ("idle", "starttaskfailed", "deallocated"):
                    self._begin_boot(node, now)
            self.account.pending_pools.add(pool)

    # --- pools -----------------------------------------------------------------------------------------------
    def reconcile_pool(self, pool: Pool, now: float) -> None:
        """Bring a pool toward its targets (or finish deleting it)."""
        if pool.removed:
            return
        if pool.state == "deleting":
            self._reconcile_deleting_pool(pool, now)
            return
        for node in list(pool.nodes.values()):
            if node.removing is not None:
                self._progress_removal(node, now)
            elif node.operation is not None:
                self.operations.progress(node, now)
        if pool.allocation_state != "steady":
            if pool.allocation_state != "stopping":  # a stopped resize only waits for nodes already coming
                for dedicated in (True, False):
                    self._resize(pool, dedicated, now)
            busy = any(node.state == "creating" or node.removing is not None for node in pool.nodes.values())
            if not busy:
                pool.allocation_state = "steady"
                pool.allocation_time = now
                pool.touch(now)
        self.account.changes.pools.add(pool)

    def _resize(self, pool: Pool, dedicated: bool, now: float) -> None:
        target = pool.target_dedicated if dedicated else pool.target_low_priority
        members = [n for n in pool.nodes.values() if n.is_dedicated == dedicated and n.removing is None]
        if len(members) < target:
            self._allocate(pool, dedicated, target - len(members), now)
        elif len(members) > target:
            members.sort(key=lambda n: (REMOVAL_ORDER.get(n.state, 0), -n.seq))
            for node in members[: len(members) - target]:
                node.removing = pool.deallocation_option
                self._progress_removal(node, now)

    def _cores_in_use(self, dedicated: bool) -> int:
        return sum(
            pool.cores_per_node
            for pool in self.account.pools.values()
            for node in pool.nodes.values()
            if node.is_dedicated == dedicated
        )

    def _family_cores_in_use(self, family: str) -> int:
        return sum(
            pool.cores_per_node * pool.current_nodes(True)
            for pool in self.account.pools.values()
            if vm_family(pool.spec["vmSize"]) == family
        )

    def _core_room(self, pool: Pool, dedicated: bool) -> tuple[int, str, str]:
        """Cores this pool may still add, the resize error code when they run out, and the limit's description."""
        quotas = self.account.quotas
        if not dedicated:
            room = quotas.low_priority_cores - self._cores_in_use(False)
            return room, "AccountLowPriorityCoreQuotaReached", f"{quotas.low_priority_cores} low-priority cores"
        room = quotas.dedicated_cores - self._cores_in_use(True)
        if quotas.family_enforced:
            family = vm_family(pool.spec["vmSize"])
            family_room = quotas.family_quota(family) - self._family_cores_in_use(family)
            if family_room < room:  # the family's quota binds before the account's total
                limit = f"{quotas.family_quota(family)} dedicated cores of {family}"
                return family_room, "AccountVMSeriesCoreQuotaReached", limit
        return room, "AccountCoreQuotaReached", f"{quotas.dedicated_cores} dedicated cores"

    def _allocate(self, pool: Pool, dedicated: bool, count: int, now: float) -> None:
        room, code, limit = self._core_room(pool, dedicated)
        if any(error.get("code") == code for error in pool.resize_errors):
            return  # this resize already ran into the quota; Batch does not keep trying
        for _ in range(count):
            if pool.cores_per_node > room:
                pool.resize_errors.append(
                    {
                        "code": code,
                        "message": f"The specified account has reached VM core quota ({limit}).",
                        "values": [{"name": "CoreQuota", "value": limit.split()[0]}],
                    }
                )
                return
            room -= pool.cores_per_node
            self._create_node(pool, dedicated, now)

    def _create_node(self, pool: Pool, dedicated: bool, now: float) -> None:
        pool.node_counter += 1
        number = pool.node_counter
        node_id = make_node_id(pool.id, int(pool.creation_time * 1e6), number, dedicated)
        index = number - 1  # the first node of a pool gets 10.0.0.4, as in Batch
        address = f"10.0.{(index // 250) % 250}.{4 + index % 250}"
        node = Node(node_id, pool, self.account.next_seq(), dedicated=dedicated, ip_address=address, now=now)
        node.number = number
        root = self.account.node_root(pool.id, node_id)
        for name in ("shared", "startup", "workitems"):
            (root / name).mkdir(parents=True, exist_ok=True)
        pool.nodes[node.id] = node
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(_CREATING_SHARE), self._boot)

    def _reconcile_deleting_pool(self, pool: Pool, now: float) -> None:
        for node in pool.nodes.values():
            if node.state != "leavingpool":
                node.set_state("leavingpool", now)
            self._evict(node, "requeue", now)
        if any(node.busy_workers for node in pool.nodes.values()):
            return  # wait for the processes to stop; their completions wake the scheduler again
        for node in list(pool.nodes.values()):
            self._remove_node(node)
        if self.account.pools.get(pool.key) is pool:
            del self.account.pools[pool.key]
        pool.removed = True
        self.account.changes.pools.discard(pool)
        self.account.changes.removals.append(("pool", pool.key))

    # --- node lifecycle --------------------------------------------------------------------------------------
    def _phase_seconds(self, share: float) -> float:
        return (self._allocation_seconds + self._faults.extra_allocation_seconds) * share

    def _node_timer(self, node: Node, delay: float, action: Callable[[Node, float], None]) -> None:
        step = node.step

        def fire(now: float) -> None:
            if not node.removed and node.step == step:  # the node moved on: this step is stale
                action(node, now)

        self._timers.after(delay, fire)

    def _boot(self, node: Node, now: float) -> None:
        """``creating`` (or ``preempted``) → ``starting``: the VM is allocated."""
        self._begin_boot(node, now)
        self.account.pending_pools.add(node.pool)

    def _begin_boot(self, node: Node, now: float) -> None:
        node.set_state("starting", now)
        node.last_boot_time = now
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(_STARTING_SHARE), self._started)

    def _started(self, node: Node, now: float) -> None:
        """``starting`` → pull the pool's container images (if any) → idle or the start task."""
        config = node.pool.container_configuration
        images = [str(name) for name in (config or {}).get("containerImageNames") or []]
        if config is None or not images:
            self._mount_then_ready(node, now)
            return
        node.busy_workers += 1
        self._executor.submit_image_pulls(node, node.step, images, config)

    def finish_image_pulls(self, completion: Completion, now: float) -> None:
        """After the pulls at node start: the node is ``unusable`` with ``errors`` if one failed, else ready."""
        node = completion.node
        if node.removed or node.step != completion.token or node.state != "starting":
            return
        if completion.errors:
            node.errors = completion.errors
            node.set_state("unusable", now)
            self.account.changes.nodes.add(node)
            return
        self._mount_then_ready(node, now)

    def _mount_then_ready(self, node: Node, now: float) -> None:
        """After the images: materialise the pool's mounts first (if any), then finish booting."""
        if self.operations.needs_setup(node):
            self.operations.begin_setup(node, now)
        else:
            self._ready(node, now)

    def _ready(self, node: Node, now: float) -> None:
        """``starting`` → ``idle``, or → ``waitingforstarttask`` while a blocking start task runs."""
        start_task = node.pool.start_task
        if start_task is not None and start_task.get("waitForSuccess", True):
            node.set_state("waitingforstarttask", now)
        else:
            node.set_state("idle", now)
        self.account.changes.nodes.add(node)
        if start_task is not None:
            node.start_task_info = None
            self._run_start_task(node, 0, now)

    def _run_start_task(self, node: Node, retry: int, now: float) -> None:
        info: dict[str, Any] = {"state": "running", "startTime": iso(now), "retryCount": retry}
        if retry:
            info["lastRetryTime"] = iso(now)
        node.start_task_info = info
        node.log(now, f"start task started (retry {retry})")
        cancel = threading.Event()
        self._start_task_cancels[node] = cancel
        node.busy_workers += 1
        self.account.stats.start_tasks_run += 1
        spec = start_task_spec(self.account, node, retry, self.batch_url)
        self._executor.submit_start_task(node, node.step, spec, cancel)

    def finish_start_task(self, completion: Completion, now: float) -> None:
        """Apply a start task's outcome: retry it, or settle the node ``idle`` or ``starttaskfailed``."""
        node = completion.node
        outcome = completion.outcome
        if node.removed or node.step != completion.token or not isinstance(outcome, RunOutcome):
            return
        start_task = node.pool.start_task or {}
        previous = node.start_task_info or {}
        retry = int(previous.get("retryCount", 0))
        info: dict[str, Any] = {
            "state": "completed",
            "startTime": iso(outcome.start_time),
            "endTime": iso(outcome.end_time),
            "retryCount": retry,
            "result": outcome.result,
        }
        if outcome.exit_code is not None:
            info["exitCode"] = outcome.exit_code
        if outcome.result == "failure":
            info["failureInfo"] = outcome.failure_info or task_model.FAILURE_EXIT_CODE
        if "lastRetryTime" in previous:
            info["lastRetryTime"] = previous["lastRetryTime"]
        node.start_task_info = info
        node.log(now, f"start task completed: {outcome.result}, exit code {outcome.exit_code}")
        self.account.changes.nodes.add(node)
        max_retries = int(start_task.get("maxTaskRetryCount", 0))
        if outcome.result == "failure" and (max_retries == -1 or retry < max_retries):
            self._run_start_task(node, retry + 1, now)
            return
        if node.state == "waitingforstarttask":
            node.set_state("idle" if outcome.result == "success" else "starttaskfailed", now)
        if outcome.result == "failure":
            node.errors = [node_error(info["failureInfo"])]

    def preempt(self, node: Node, now: float) -> None:
        """Fault injection: the node is preempted, its tasks are requeued, and it boots again later."""
        for task in list(node.tasks):
            task_model.requeue(task, now, count=False)
        self._stop_start_task(node)
        node.set_state("preempted", now)
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(_CREATING_SHARE), self._boot)

    # --- leaving the pool ------------------------------------------------------------------------------------
    def _progress_removal(self, node: Node, now: float) -> None:
        if node.state != "leavingpool":
            node.set_state("leavingpool", now)
            self.account.changes.nodes.add(node)
        self._evict(node, node.removing or "requeue", now)
        if not node.tasks and node.busy_workers == 0:
            self._remove_node(node)

    def _evict(self, node: Node, option: str, now: float) -> None:
        """Deal with a leaving node's tasks: requeue, end, or (taskcompletion/retaineddata) let them finish."""
        for task in list(node.tasks):
            if option == "requeue":
                task_model.requeue(task, now)
            elif option == "terminate":
                task_model.end_task(task, now)
        self._stop_start_task(node)

    def _stop_start_task(self, node: Node) -> None:
        cancel = self._start_task_cancels.get(node)
        if cancel is not None:
            cancel.set()

    def _remove_node(self, node: Node) -> None:
        pool = node.pool
        if pool.nodes.get(node.id) is node:
            del pool.nodes[node.id]
        node.removed = True
        self.account.node_lifetimes.append(
            lifetime_of(pool, node.id, node.is_dedicated, node.allocation_time, now_ts())
        )
        self._start_task_cancels.pop(node, None)
        self.account.changes.nodes.discard(node)
        self.account.changes.removals.append(("node", pool.key, node.id))
        self._janitor.discard(self.account.node_root(pool.id, node.id))
