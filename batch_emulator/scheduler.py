"""The scheduler: allocates nodes through the Batch node states and runs tasks on them.

It is event-driven: models record work in the account's ``pending_*`` sets and call
:meth:`Scheduler.wake`; worker threads append results to a queue and wake it; node lifecycle steps
are timers. One thread does all of this under the account lock, so state changes stay simple.
Task processes run in a bounded worker pool through the node runner
(``batch_emulator.node.runner.run_task``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch_emulator.config import TaskRunner
from batch_emulator.faults import FaultInjector
from batch_emulator.janitor import Janitor
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.jobs import Job, begin_termination
from batch_emulator.models.nodes import SCHEDULABLE_STATES, Node, make_node_id
from batch_emulator.models.pools import Pool
from batch_emulator.models.tasks import RunOutcome, Task
from batch_emulator.models.validation import id_key
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec
from batch_emulator.timefmt import iso, now_ts

_log = logging.getLogger("batch_emulator.scheduler")

#: Order in which a shrinking pool gives up nodes (least useful first).
_REMOVAL_ORDER = {
    "creating": 0,
    "starting": 1,
    "unusable": 2,
    "starttaskfailed": 3,
    "waitingforstarttask": 4,
    "preempted": 5,
    "idle": 6,
    "running": 7,
}
_RUNNER_ERROR = "TaskRunnerError"


@dataclass(frozen=True)
class _Preempted:
    """Marker outcome: the fault injector preempted the node instead of running the task."""


PREEMPTED = _Preempted()


@dataclass
class _Completion:
    kind: str  # "task" or "start"
    node: Node
    token: int
    outcome: RunOutcome | _Preempted | None
    task: Task | None = None


def default_runner() -> TaskRunner:
    """Return ``batch_emulator.node.runner.run_task`` (imported late: another package provides it)."""
    from batch_emulator.node import runner

    run_task: TaskRunner = runner.run_task
    return run_task


def _outcome(result: TaskRunResult) -> RunOutcome:
    return RunOutcome(
        exit_code=result.exit_code,
        result=result.result,
        start_time=result.start_time.timestamp(),
        end_time=result.end_time.timestamp(),
        failure_info=result.failure_info,
    )


def _error_outcome(started: float, message: str) -> RunOutcome:
    return RunOutcome(
        exit_code=None,
        result="failure",
        start_time=started,
        end_time=now_ts(),
        failure_info={
            "category": "servererror",
            "code": _RUNNER_ERROR,
            "message": message,
            "details": [{"name": "Message", "value": message}],
        },
    )


def _injected_failure(directory: Path, exit_code: int, started: float, what: str) -> RunOutcome:
    """Write the files a failed run leaves and return its outcome (no process runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "wd").mkdir(exist_ok=True)
    (directory / "stdout.txt").write_text("", "utf-8")
    (directory / "stderr.txt").write_text(f"{what} failed by fault injection (exit code {exit_code})\n", "utf-8")
    return RunOutcome(
        exit_code=exit_code,
        result="success" if exit_code == 0 else "failure",
        start_time=started,
        end_time=now_ts(),
        failure_info=None if exit_code == 0 else dict(task_model.FAILURE_EXIT_CODE),
    )


class Scheduler:
    """Allocates nodes and runs start tasks and tasks for one account."""

    def __init__(
        self,
        account: Account,
        *,
        runner: TaskRunner | None,
        faults: FaultInjector,
        janitor: Janitor,
        allocation_seconds: float,
        max_workers: int,
    ) -> None:
        """Create a stopped scheduler.

        Args:
            account: The account whose pools and jobs it serves.
            runner: Runs one task on a node (default: the node runner package).
            faults: Fault injection in force.
            janitor: Deletes discarded directories.
            allocation_seconds: Time a node takes from ``creating`` to ``idle`` (plus its start task).
            max_workers: Most task processes at once.
        """
        self.account = account
        self.batch_url = ""
        self._runner = runner
        self._faults = faults
        self._janitor = janitor
        self._allocation_seconds = max(0.0, allocation_seconds)
        self._max_workers = max(1, max_workers)
        self._cond = threading.Condition()
        self._woken = False
        self._stopping = False
        self._timers: list[tuple[float, int, Callable[[float], None]]] = []
        self._timer_seq = itertools.count()
        self._completions: deque[_Completion] = deque()
        self._in_flight = 0
        self._node_cancels: dict[Node, threading.Event] = {}
        self._job_deadlines: set[Job] = set()
        self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="batch-node")
        self._thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)
        account.set_listener(self.wake)

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Resume work found in the account (after a load) and start the scheduling thread."""
        with self.account.lock:
            self._recover(now_ts())
        self._woken = True  # the first step picks up what was recovered
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, signal every running process to stop and wait for the workers."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()
        with self.account.lock:
            for job in self.account.jobs.values():
                for task in job.tasks.values():
                    if task.cancel is not None:
                        task.cancel.set()
            for event in self._node_cancels.values():
                event.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.account.set_listener(lambda: None)

    def wake(self) -> None:
        """Ask the scheduling thread to look at the account again."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    @property
    def in_flight(self) -> int:
        """Task and start-task processes currently in the worker pool."""
        return self._in_flight

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._woken and not self._stopping:
                    delay = self._timers[0][0] - now_ts() if self._timers else None
                    if delay is not None and delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopping:
                    return
                self._woken = False
            try:
                self._tick()
            except Exception:  # noqa: BLE001 - one failing step must not stop all scheduling
                _log.exception("scheduler step failed")

    def _tick(self) -> None:
        now = now_ts()
        account = self.account
        with account.lock:
            self._process_completions(now)
            while self._timers and self._timers[0][0] <= now:
                _, _, action = heapq.heappop(self._timers)
                action(now)
            pools, account.pending_pools = account.pending_pools, set()
            for pool in pools:
                self._reconcile_pool(pool, now)
            jobs, account.pending_jobs = account.pending_jobs, set()
            for job in jobs:
                self._reconcile_job(job, now)
            self._dispatch(now)

    def _after(self, delay: float, action: Callable[[float], None]) -> None:
        heapq.heappush(self._timers, (now_ts() + delay, next(self._timer_seq), action))

    def _node_timer(self, node: Node, delay: float, action: Callable[[Node, float], None]) -> None:
        step = node.step

        def fire(now: float) -> None:
            if not node.removed and node.step == step:
                action(node, now)

        self._after(delay, fire)

    # --- recovery after a load -------------------------------------------------------------------------------
    def _recover(self, now: float) -> None:
        for pool in self.account.pools.values():
            for node in pool.nodes.values():
                if node.removing is None and node.state not in ("idle", "starttaskfailed"):
                    self._begin_boot(node, now)
            self.account.pending_pools.add(pool)
        self.account.pending_jobs.update(self.account.jobs.values())

    # --- pools and nodes -------------------------------------------------------------------------------------
    def _reconcile_pool(self, pool: Pool, now: float) -> None:
        if pool.removed:
            return
        if pool.state == "deleting":
            self._reconcile_deleting_pool(pool, now)
            return
        for node in list(pool.nodes.values()):
            if node.removing is not None:
                self._progress_removal(node, now)
        if pool.allocation_state != "steady":
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
            members.sort(key=lambda n: (_REMOVAL_ORDER.get(n.state, 0), -n.seq))
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

    def _allocate(self, pool: Pool, dedicated: bool, count: int, now: float) -> None:
        quotas = self.account.quotas
        quota = quotas.dedicated_cores if dedicated else quotas.low_priority_cores
        code = "AccountCoreQuotaReached" if dedicated else "AccountLowPriorityCoreQuotaReached"
        if any(error.get("code") == code for error in pool.resize_errors):
            return  # this resize already ran into the quota; Batch does not keep trying
        used = self._cores_in_use(dedicated)
        for _ in range(count):
            if used + pool.cores_per_node > quota:
                pool.resize_errors.append(
                    {
                        "code": code,
                        "message": "The specified account has reached VM core quota "
                        f"({quota} {'dedicated' if dedicated else 'low-priority'} cores).",
                        "values": [{"name": "CoreQuota", "value": str(quota)}],
                    }
                )
                return
            used += pool.cores_per_node
            self._create_node(pool, dedicated, now)

    def _create_node(self, pool: Pool, dedicated: bool, now: float) -> None:
        pool.node_counter += 1
        number = pool.node_counter
        node_id = make_node_id(pool.id, int(pool.creation_time * 1e6), number, dedicated)
        address = f"10.0.{(number // 250) % 250}.{4 + number % 250}"
        node = Node(node_id, pool, self.account.next_seq(), dedicated=dedicated, ip_address=address, now=now)
        root = self.account.node_root(pool.id, node_id)
        for name in ("shared", "startup", "workitems"):
            (root / name).mkdir(parents=True, exist_ok=True)
        pool.nodes[node.id] = node
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(0.6), self._boot)

    def _phase_seconds(self, share: float) -> float:
        return (self._allocation_seconds + self._faults.extra_allocation_seconds) * share

    def _boot(self, node: Node, now: float) -> None:
        """``creating`` → ``starting`` (the VM is allocated)."""
        self._begin_boot(node, now)
        self.account.pending_pools.add(node.pool)

    def _begin_boot(self, node: Node, now: float) -> None:
        node.set_state("starting", now)
        node.last_boot_time = now
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(0.4), self._started)

    def _started(self, node: Node, now: float) -> None:
        """``starting`` → idle, or → ``waitingforstarttask`` while a blocking start task runs."""
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
        pool = node.pool
        start_task = pool.start_task or {}
        info: dict[str, Any] = {"state": "running", "startTime": iso(now), "retryCount": retry}
        if retry:
            info["lastRetryTime"] = iso(now)
        node.start_task_info = info
        spec = TaskRunSpec(
            kind="start",
            account_name=self.account.name,
            pool_id=pool.id,
            node_id=node.id,
            node_root=self.account.node_root(pool.id, node.id),
            job_id=None,
            task_id=None,
            command_line=str(start_task.get("commandLine", "")),
            resource_files=list(start_task.get("resourceFiles") or []),
            environment_settings=list(start_task.get("environmentSettings") or []),
            output_files=[],
            max_wall_clock_seconds=None,
            retry_count=retry,
            batch_url=self.batch_url,
        )
        cancel = threading.Event()
        self._node_cancels[node] = cancel
        node.busy_workers += 1
        self._in_flight += 1
        self.account.stats.start_tasks_run += 1
        self._executor.submit(self._work_start_task, node, node.step, spec, cancel)

    def _work_start_task(self, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event) -> None:
        started = now_ts()
        outcome: RunOutcome | None = None
        try:
            if cancel.is_set():
                outcome = None
            elif self._faults.start_task_fails(spec.pool_id):
                outcome = _injected_failure(spec.node_root / "startup", 1, started, "The start task")
            else:
                outcome = _outcome(self._run(spec, cancel))
        except Exception as error:  # noqa: BLE001 - a runner bug must not wedge the node
            _log.exception("start task runner failed on %s", spec.node_id)
            outcome = _error_outcome(started, f"The node runner failed: {error}")
        finally:
            self._completions.append(_Completion("start", node, token, outcome))
            self.wake()

    def _finish_start_task(self, completion: _Completion, now: float) -> None:
        node = completion.node
        outcome = completion.outcome
        if node.removed or node.step != completion.token or not isinstance(outcome, RunOutcome):
            return
        start_task = node.pool.start_task or {}
        retry = int((node.start_task_info or {}).get("retryCount", 0))
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
        if retry and node.start_task_info and "lastRetryTime" in node.start_task_info:
            info["lastRetryTime"] = node.start_task_info["lastRetryTime"]
        node.start_task_info = info
        self.account.changes.nodes.add(node)
        max_retries = int(start_task.get("maxTaskRetryCount", 0))
        if outcome.result == "failure" and (max_retries == -1 or retry < max_retries):
            self._run_start_task(node, retry + 1, now)
            return
        if node.state == "waitingforstarttask":
            node.set_state("idle" if outcome.result == "success" else "starttaskfailed", now)

    def _progress_removal(self, node: Node, now: float) -> None:
        option = node.removing or "requeue"
        if node.state != "leavingpool":
            node.set_state("leavingpool", now)
            self.account.changes.nodes.add(node)
        self._evict(node, option, now)
        if not node.tasks and node.busy_workers == 0:
            self._remove_node(node)

    def _evict(self, node: Node, option: str, now: float) -> None:
        """Deal with a leaving node's tasks: requeue, end, or (taskcompletion/retaineddata) let them finish."""
        for task in list(node.tasks):
            if option == "requeue":
                task_model.requeue(task, now)
            elif option == "terminate":
                task_model.end_task(task, now)
        cancel = self._node_cancels.get(node)
        if cancel is not None:
            cancel.set()

    def _remove_node(self, node: Node) -> None:
        pool = node.pool
        if pool.nodes.get(node.id) is node:
            del pool.nodes[node.id]
        node.removed = True
        self._node_cancels.pop(node, None)
        self.account.changes.nodes.discard(node)
        self.account.changes.removals.append(("node", pool.key, node.id))
        self._janitor.discard(self.account.node_root(pool.id, node.id))

    def _reconcile_deleting_pool(self, pool: Pool, now: float) -> None:
        for node in pool.nodes.values():
            if node.state != "leavingpool":
                node.set_state("leavingpool", now)
            self._evict(node, "requeue", now)
        if any(node.busy_workers for node in pool.nodes.values()):
            return  # wait for the processes to stop; their completions wake us again
        for node in list(pool.nodes.values()):
            self._remove_node(node)
        if self.account.pools.get(pool.key) is pool:
            del self.account.pools[pool.key]
        pool.removed = True
        self.account.changes.pools.discard(pool)
        self.account.changes.removals.append(("pool", pool.key))

    def _preempt(self, node: Node, now: float) -> None:
        """Fault injection: the node is preempted, its tasks are requeued, and it comes back later."""
        for task in list(node.tasks):
            task_model.requeue(task, now, count=False)
        cancel = self._node_cancels.get(node)
        if cancel is not None:
            cancel.set()
        node.set_state("preempted", now)
        self.account.changes.nodes.add(node)
        self._node_timer(node, self._phase_seconds(0.6), self._boot)

    # --- jobs ------------------------------------------------------------------------------------------------
    def _reconcile_job(self, job: Job, now: float) -> None:
        if job.removed:
            return
        self._watch_wall_clock(job)
        if job.state == "active" and job.on_all_tasks_complete == "terminatejob" and job.all_tasks_complete():
            begin_termination(job, "AllTasksComplete", now)
        if job.state == "terminating" and job.in_flight == 0:
            job.end_time = now
            job.set_state("completed", now)
        elif job.state == "deleting":
            for task in job.tasks.values():
                if task.cancel is not None:
                    task.cancel.set()
            if job.in_flight == 0:
                self._remove_job(job)
        elif job.state == "disabling":
            self._progress_disable(job, now)
        elif job.state == "enabling":
            job.disable_option = None
            job.set_state("active", now)

    def _progress_disable(self, job: Job, now: float) -> None:
        option = job.disable_option or "requeue"
        for task in list(job.tasks.values()):
            if task.state in ("preparing", "running"):
                if option == "requeue":
                    task_model.requeue(task, now)
                elif option == "terminate":
                    task_model.end_task(task, now)
        settled = job.task_counts["running"] == 0 if option == "wait" else job.in_flight == 0
        if settled:
            job.set_state("disabled", now)

    def _watch_wall_clock(self, job: Job) -> None:
        limit = (job.spec.get("constraints") or {}).get("maxWallClockTime")
        if not limit or job in self._job_deadlines or job.state in ("completed", "deleting"):
            return
        from batch_emulator.timefmt import parse_duration

        self._job_deadlines.add(job)
        deadline = job.creation_time + parse_duration(limit).total_seconds()

        def expire(now: float) -> None:
            self._job_deadlines.discard(job)
            if not job.removed and job.state in ("active", "disabling", "disabled", "enabling"):
                begin_termination(job, "MaxWallClockTimeExpiry", now)

        self._after(max(0.0, deadline - now_ts()), expire)

    def _remove_job(self, job: Job) -> None:
        account = self.account
        if account.jobs.get(job.key) is job:
            del account.jobs[job.key]
        job.removed = True
        account.changes.jobs.discard(job)
        account.changes.removals.append(("job", job.key))
        places = {(task.pool_id, task.node_id) for task in job.tasks.values() if task.node_id and task.pool_id}
        for task in job.tasks.values():
            task.removed = True
        job.queue.clear()
        for pool_id, node_id in places:
            self._janitor.discard(account.node_root(pool_id, node_id) / "workitems" / job.id)

    # --- tasks -----------------------------------------------------------------------------------------------
    def _dispatch(self, now: float) -> None:
        by_pool: dict[str, list[Job]] = {}
        for job in self.account.jobs.values():
            if job.state == "active" and job.queue:
                by_pool.setdefault(id_key(job.pool_id), []).append(job)
        for pool_key, jobs in by_pool.items():
            pool = self.account.pools.get(pool_key)
            if pool is None or pool.state != "active":
                continue  # tasks of a job whose pool is missing stay active, as in Batch
            nodes = [node for node in pool.nodes.values() if node.schedulable()]
            if not nodes:
                continue
            jobs.sort(key=lambda item: (-item.priority, item.seq))
            for job in jobs:
                self._dispatch_job(job, pool, nodes, now)
                if self._in_flight >= self._max_workers:
                    return

    def _dispatch_job(self, job: Job, pool: Pool, nodes: list[Node], now: float) -> None:
        queue = job.queue
        limit = job.max_parallel_tasks
        while queue and self._in_flight < self._max_workers:
            if limit != -1 and job.task_counts["running"] >= limit:
                return
            task = queue[0]
            if task.state != "active" or task.removed:
                queue.popleft()
                continue
            node = self._choose_node(nodes, task.required_slots, pool.fill_type)
            if node is None:
                return
            queue.popleft()
            self._start(task, node, now)

    @staticmethod
    def _choose_node(nodes: list[Node], slots: int, fill_type: str) -> Node | None:
        best: Node | None = None
        for node in nodes:
            if node.state not in SCHEDULABLE_STATES or node.removing is not None or node.free_slots < slots:
                continue
            if best is None:
                best = node
            elif fill_type == "pack":
                if node.free_slots < best.free_slots:
                    best = node
            elif node.free_slots > best.free_slots:
                best = node
        return best

    def _start(self, task: Task, node: Node, now: float) -> None:
        job = task.job
        token = task_model.assign(task, node, now)
        body = task.body()
        environment = {item["name"]: item for item in job.spec.get("commonEnvironmentSettings") or []}
        environment.update({item["name"]: item for item in body.get("environmentSettings") or []})
        spec = TaskRunSpec(
            kind="job",
            account_name=self.account.name,
            pool_id=node.pool.id,
            node_id=node.id,
            node_root=self.account.node_root(node.pool.id, node.id),
            job_id=job.id,
            task_id=task.id,
            command_line=str(body["commandLine"]),
            resource_files=list(body.get("resourceFiles") or []),
            environment_settings=[
                {"name": str(i["name"]), "value": str(i.get("value", ""))} for i in environment.values()
            ],
            output_files=list(body.get("outputFiles") or []),
            max_wall_clock_seconds=task.max_wall,
            retry_count=task.retry_count,
            batch_url=self.batch_url,
        )
        job.in_flight += 1
        node.busy_workers += 1
        self._in_flight += 1
        assert task.cancel is not None
        self._executor.submit(self._work_task, task, node, token, spec, task.cancel)

    def _work_task(self, task: Task, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event) -> None:
        outcome: RunOutcome | _Preempted | None = None
        started = now_ts()
        try:
            with self.account.lock:
                running = task_model.mark_running(task, token, started)
                if running:
                    self.account.stats.tasks_started += 1
            if running and not cancel.is_set():
                assert spec.job_id is not None
                assert spec.task_id is not None
                exit_code = self._faults.task_exit_code(spec.task_id)
                if self._faults.preempt(spec.job_id, spec.task_id):
                    outcome = PREEMPTED
                elif exit_code is not None:
                    directory = spec.node_root / "workitems" / spec.job_id / "job-1" / spec.task_id
                    outcome = _injected_failure(directory, exit_code, started, "The task")
                else:
                    outcome = _outcome(self._run(spec, cancel))
        except Exception as error:  # noqa: BLE001 - a runner bug must not wedge the job
            _log.exception("task runner failed for %s/%s", spec.job_id, spec.task_id)
            outcome = _error_outcome(started, f"The node runner failed: {error}")
        finally:
            self._completions.append(_Completion("task", node, token, outcome, task))
            self.wake()

    def _run(self, spec: TaskRunSpec, cancel: threading.Event) -> TaskRunResult:
        if self._runner is None:
            self._runner = default_runner()
        return self._runner(spec, cancel)

    def _process_completions(self, now: float) -> None:
        account = self.account
        while self._completions:
            completion = self._completions.popleft()
            node = completion.node
            self._in_flight -= 1
            node.busy_workers -= 1
            if completion.kind == "start":
                self._finish_start_task(completion, now)
            else:
                task = completion.task
                assert task is not None
                task.job.in_flight -= 1
                self._finish_task(task, completion, now)
                account.pending_jobs.add(task.job)
            if node.removing is not None or node.pool.state == "deleting" or node.pool.allocation_state != "steady":
                account.pending_pools.add(node.pool)

    def _finish_task(self, task: Task, completion: _Completion, now: float) -> None:
        outcome = completion.outcome
        current = task.attempt == completion.token and not task.removed
        if not current or task.state not in ("preparing", "running"):
            return
        if outcome is PREEMPTED:
            self._preempt(completion.node, now)
        elif isinstance(outcome, RunOutcome):
            if task_model.finish_run(task, outcome, now):
                self.account.stats.tasks_completed += 1
        elif task.end_reason is not None:  # ended before its process started
            task_model.finish_run(task, RunOutcome(None, "failure", task.start_time or now, now, task.end_reason), now)
            self.account.stats.tasks_completed += 1
        else:
            task_model.requeue(task, now, count=False)
