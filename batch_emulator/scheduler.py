"""The scheduler: one event-driven thread that allocates nodes, places tasks on them and settles jobs.

Models record work in the account's ``pending_*`` sets and call :meth:`Scheduler.wake`; workers report
finished runs and wake it; node lifecycle steps and job deadlines are timers. It never sleep-polls. All
state changes happen on this thread under the account lock (except a worker marking its task
``running``). Node allocation is in :mod:`batch_emulator.allocation`, running processes in
:mod:`batch_emulator.execution`.
"""

from __future__ import annotations

import logging
import threading

from batch_emulator.allocation import NodeAllocator
from batch_emulator.autoscaler import AutoScaler
from batch_emulator.clock import ServiceClock
from batch_emulator.config import TaskRunner
from batch_emulator.execution import PREEMPTED, Completion, TaskExecutor, job_task_spec, multi_instance_specs
from batch_emulator.faults import FaultInjector
from batch_emulator.janitor import Janitor
from batch_emulator.job_task_runs import JobTaskRunner
from batch_emulator.models import multi_instance
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.jobs import Job, after_task_completed, begin_termination, job_ended
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.models.tasks import RunOutcome, Task
from batch_emulator.models.validation import id_key
from batch_emulator.schedule_timer import ScheduleTimer
from batch_emulator.timefmt import now_ts, parse_duration
from batch_emulator.timers import Timers

_log = logging.getLogger("batch_emulator.scheduler")


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
        clock: ServiceClock | None = None,
    ) -> None:
        """Create a stopped scheduler.

        Args:
            account: The account whose pools and jobs it serves.
            runner: Runs one task on a node (default: the node runner package).
            faults: Fault injection in force.
            janitor: Deletes discarded directories.
            allocation_seconds: Time a node takes from ``creating`` to ``idle`` (plus its start task).
            max_workers: Most task processes at once.
            clock: How fast service-defined intervals pass (default: real time).
        """
        self.account = account
        self._janitor = janitor
        self._cond = threading.Condition()
        self._woken = False
        self._stopping = False
        self._timers = Timers()
        self._job_deadlines: set[Job] = set()
        self._executor = TaskExecutor(account, runner=runner, faults=faults, max_workers=max_workers, wake=self.wake)
        self._allocator = NodeAllocator(
            account,
            executor=self._executor,
            timers=self._timers,
            janitor=janitor,
            faults=faults,
            allocation_seconds=allocation_seconds,
        )
        self._job_tasks = JobTaskRunner(account, self._executor, self._submit)
        clock = clock or ServiceClock()
        self._autoscaler = AutoScaler(account, timers=self._timers, clock=clock)
        self._schedule_timer = ScheduleTimer(account, timers=self._timers, clock=clock)
        self._batch_url = ""
        self._thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)
        account.set_listener(self.wake)

    @property
    def batch_url(self) -> str:
        """The account URL tasks see as ``AZ_BATCH_ACCOUNT_URL``."""
        return self._batch_url

    @batch_url.setter
    def batch_url(self, url: str) -> None:
        self._batch_url = url
        self._allocator.batch_url = url
        self._job_tasks.batch_url = url

    @property
    def in_flight(self) -> int:
        """Task and start-task processes currently in the worker pool."""
        return self._executor.in_flight

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Resume work found in the account (after a load) and start the scheduling thread."""
        with self.account.lock:
            self._allocator.recover(now_ts())
            self.account.pending_jobs.update(self.account.jobs.values())
            self._autoscaler.start()
            self._schedule_timer.start()
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
            self._allocator.cancel_all()
        self._executor.shutdown()
        self.account.set_listener(lambda: None)

    def wake(self) -> None:
        """Ask the scheduling thread to look at the account again."""
        with self._cond:
            self._woken = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._woken and not self._stopping:
                    delay = self._timers.seconds_to_next()
                    if delay is not None and delay <= 0:
                        break
                    self._cond.wait(delay)
                if self._stopping:
                    return
                self._woken = False
            try:
                self._step()
            except Exception:  # noqa: BLE001 - one failing step must not stop all scheduling
                _log.exception("scheduler step failed")

    def _step(self) -> None:
        now = now_ts()
        account = self.account
        with account.lock:
            for completion in self._executor.drain():
                self._apply(completion, now)
            self._timers.run_due(now)
            scaling, account.pending_autoscale = account.pending_autoscale, set()
            for pool in scaling:
                self._autoscaler.reconcile(pool, now)
            pools, account.pending_pools = account.pending_pools, set()
            for pool in pools:
                self._allocator.reconcile_pool(pool, now)
            schedules, account.pending_schedules = account.pending_schedules, set()
            for schedule in schedules:
                self._schedule_timer.reconcile(schedule, now)
            jobs, account.pending_jobs = account.pending_jobs, set()
            for job in jobs:
                self._reconcile_job(job, now)
            self._schedule_timer.after_step(now)
            self._dispatch(now)

    # --- completions -----------------------------------------------------------------------------------------
    def _apply(self, completion: Completion, now: float) -> None:
        node = completion.node
        node.busy_workers -= 1
        if completion.kind == "start":
            self._allocator.finish_start_task(completion, now)
        elif completion.kind == "setup":
            self._allocator.operations.finish_setup(completion, now)
        elif completion.kind == "images":
            self._allocator.finish_image_pulls(completion, now)
        elif completion.job is not None:  # a job preparation or release task
            self._job_tasks.finish(completion, now)
        else:
            task = completion.task
            assert task is not None
            task.job.in_flight -= 1
            if completion.multi is not None:
                completion.multi.release(completion.instances[1:], now)
            self._finish_task(task, completion, now)
            self.account.pending_jobs.add(task.job)
        busy_pool = node.pool.state == "deleting" or node.pool.allocation_state != "steady"
        if node.removing is not None or node.operation is not None or busy_pool:
            self.account.pending_pools.add(node.pool)

    def _finish_task(self, task: Task, completion: Completion, now: float) -> None:
        outcome = completion.outcome
        current = task.attempt == completion.token and not task.removed
        if not current or task.state not in ("preparing", "running"):
            return  # a stale run: the task was requeued, ended or deleted meanwhile
        if outcome is PREEMPTED:
            self._allocator.preempt(completion.node, now)
        elif isinstance(outcome, RunOutcome):
            if task_model.finish_run(task, outcome, now):
                self.account.stats.tasks_completed += 1
                after_task_completed(task, now)
        elif task.end_reason is not None:  # ended before its process started
            ended = RunOutcome(None, "failure", task.start_time or now, now, task.end_reason)
            task_model.finish_run(task, ended, now)
            self.account.stats.tasks_completed += 1
        else:
            task_model.requeue(task, now, count=False)

    # --- jobs ------------------------------------------------------------------------------------------------
    def _reconcile_job(self, job: Job, now: float) -> None:
        if job.removed:
            return
        self._watch_wall_clock(job)
        if job.state == "active" and job.on_all_tasks_complete == "terminatejob" and job.all_tasks_complete():
            begin_termination(job, "AllTasksComplete", now)
        if job.state == "terminating" and job.in_flight == 0:
            if not self._job_tasks.start_releases(job, now):
                job.end_time = now
                job.set_state("completed", now)
                job_ended(job, now)
        elif job.state == "deleting":
            for task in job.tasks.values():
                if task.cancel is not None:
                    task.cancel.set()
            self._job_tasks.stop_preparations(job)
            if job.in_flight == 0 and not self._job_tasks.start_releases(job, now):
                self._remove_job(job)
                job_ended(job, now)
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
        self._job_deadlines.add(job)
        deadline = job.creation_time + parse_duration(limit).total_seconds()

        def expire(now: float) -> None:
            self._job_deadlines.discard(job)
            if not job.removed and job.state in ("active", "disabling", "disabled", "enabling"):
                begin_termination(job, "MaxWallClockTimeExpiry", now)

        self._timers.after(deadline - now_ts(), expire)

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

    # --- placing tasks ---------------------------------------------------------------------------------------
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
                if not self._executor.has_room:
                    return

    def _dispatch_job(self, job: Job, pool: Pool, nodes: list[Node], now: float) -> None:
        queue = job.queue
        limit = job.max_parallel_tasks
        waiting = 0  # multi-instance tasks at the back of the queue that found too few free nodes
        while queue and self._executor.has_room:
            if limit != -1 and job.task_counts["running"] >= limit:
                return
            task = queue[0]
            if task.state != "active" or task.removed:
                queue.popleft()  # a stale entry: the task was ended, deleted or requeued elsewhere
                continue
            candidates = nodes if not job.has_side_tasks else self._job_tasks.nodes_for(job, task, nodes)
            settings = multi_instance.settings(task)
            if settings is not None:
                chosen = multi_instance.choose_nodes(
                    candidates, task.required_slots, int(settings["numberOfInstances"]), pool.fill_type
                )
                if chosen is None or not multi_instance.schedulable_on(pool):
                    waiting += 1  # it waits for enough free nodes; the tasks behind it may run meanwhile
                    if waiting >= len(queue):
                        return
                    queue.rotate(-1)
                    continue
                queue.popleft()
                self._start_multi_instance(task, chosen, now)
                continue
            node = choose_node(candidates, task.required_slots, pool.fill_type)
            if node is None:
                return
            queue.popleft()
            self._start(task, node, now)

    def _start(self, task: Task, node: Node, now: float) -> None:
        token = task_model.assign(task, node, now)
        if not self._job_tasks.start(task, node, token, now):
            self._submit(task, node, token, now)

    def _start_multi_instance(self, task: Task, nodes: list[Node], now: float) -> None:
        job, primary = task.job, nodes[0]
        token = task_model.assign(task, primary, now)
        run = multi_instance.new_run(token, task.required_slots, nodes[1:], now)
        job.multi_runs[task.key] = run
        spec, plan = multi_instance_specs(self.account, job, task, nodes, run, self._batch_url)
        job.in_flight += 1
        primary.busy_workers += 1
        assert task.cancel is not None
        self._executor.submit_task(task, primary, token, spec, task.cancel, plan)

    def _submit(self, task: Task, node: Node, token: int, now: float) -> None:
        job = task.job
        spec = job_task_spec(self.account, job, task, node, self._batch_url)
        job.in_flight += 1
        node.busy_workers += 1
        assert task.cancel is not None
        self._executor.submit_task(task, node, token, spec, task.cancel)


def choose_node(nodes: list[Node], slots: int, fill_type: str) -> Node | None:
    """Pick the node for a task: most free slots (``spread``) or fewest that still fit (``pack``)."""
    best: Node | None = None
    for node in nodes:
        if not node.accepts_tasks() or node.free_slots < slots:
            continue
        if best is None:
            best = node
        elif fill_type == "pack":
            if node.free_slots < best.free_slots:
                best = node
        elif node.free_slots > best.free_slots:
            best = node
    return best
