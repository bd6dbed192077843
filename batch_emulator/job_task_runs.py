"""Running job preparation and release tasks on nodes, for the scheduler (state in :mod:`models.job_tasks`).

Everything here runs on the scheduling thread under the account lock.
"""

from __future__ import annotations

from collections.abc import Callable

from batch_emulator.execution import Completion, TaskExecutor, side_task_spec
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.job_tasks import NodeRun, is_manager
from batch_emulator.models.jobs import Job
from batch_emulator.models.nodes import Node
from batch_emulator.models.tasks import RunOutcome, Task

PREPARATION, RELEASE = "preparation", "release"
#: Called to run a task whose node is ready: (task, node, run token, now).
Submit = Callable[[Task, Node, int, float], None]


class JobTaskRunner:
    """Runs preparation tasks before a job's first task on a node, and release tasks when the job ends."""

    def __init__(self, account: Account, executor: TaskExecutor, submit: Submit) -> None:
        """Create the runner.

        Args:
            account: The account.
            executor: Runs the preparation and release processes.
            submit: Runs a job task whose node has been prepared.
        """
        self.account = account
        self.batch_url = ""
        self._executor = executor
        self._submit = submit

    @staticmethod
    def nodes_for(job: Job, task: Task, nodes: list[Node]) -> list[Node]:
        """The nodes a task of the job may go to: not where a required preparation failed; a job manager
        that does not allow low-priority nodes only on dedicated ones."""
        preparation = job.spec.get("jobPreparationTask")
        if preparation and preparation.get("waitForSuccess", True) and job.side_runs.preparation:
            nodes = [node for node in nodes if not job.side_runs.blocks(node, True)]
        if is_manager(task) and not job.spec["jobManagerTask"].get("allowLowPriorityNode", True):
            nodes = [node for node in nodes if node.is_dedicated]
        return nodes

    def start(self, task: Task, node: Node, token: int, now: float) -> bool:
        """Start a task placed on a node, after the job's preparation task there if it has not run yet.

        Returns:
            True when the task was handed on (run now, or parked until the preparation task ends).
        """
        job = task.job
        preparation = job.spec.get("jobPreparationTask")
        if not preparation:
            return False
        place = (node.pool.id, node.id)
        run = job.side_runs.preparation.get(place)
        if run is not None and run.state == "completed":
            return False
        if run is None:
            job.side_runs.preparation[place] = self._launch(PREPARATION, job, node, now, retry=0)
        job.side_runs.parked.setdefault(place, []).append((task, token))
        return True

    def _launch(self, kind: str, job: Job, node: Node, now: float, *, retry: int) -> NodeRun:
        body = job.spec["jobPreparationTask" if kind == PREPARATION else "jobReleaseTask"]
        run = NodeRun(node.pool.id, node.id, now, retry_count=retry)
        if retry:
            run.last_retry_time = now
        spec = side_task_spec(self.account, job, node, body, retry, self.batch_url)
        job.in_flight += 1
        node.busy_workers += 1
        self._executor.submit_side_task(kind, job, node, 0, spec, run.cancel)
        return run

    @staticmethod
    def stop_preparations(job: Job) -> None:
        """The job is being deleted: stop its running preparation tasks (release tasks still run after)."""
        for run in job.side_runs.preparation.values():
            if run.state == "running":
                run.cancel.set()

    def finish(self, completion: Completion, now: float) -> None:
        """Apply a finished preparation or release run: retry it, release or requeue the parked tasks."""
        job, node = completion.job, completion.node
        assert job is not None
        job.in_flight -= 1
        self.account.pending_jobs.add(job)
        if job.removed:
            return
        place = (node.pool.id, node.id)
        runs = job.side_runs
        table = runs.preparation if completion.kind == PREPARATION else runs.release
        run = table.get(place)
        if run is None:
            return
        outcome = completion.outcome if isinstance(completion.outcome, RunOutcome) else None
        if outcome is None:
            outcome = RunOutcome(None, "failure", run.start_time, now, dict(task_model.TASK_ENDED))
        if completion.kind == PREPARATION:
            retries = int((job.spec["jobPreparationTask"].get("constraints") or {}).get("maxTaskRetryCount", 0))
            retry = outcome.result == "failure" and (retries == -1 or run.retry_count < retries)
            if retry and job.state != "deleting":
                table[place] = self._launch(PREPARATION, job, node, now, retry=run.retry_count + 1)
                return
        run.finish(outcome)
        if completion.kind == PREPARATION:
            self._release_parked(job, node, now)

    def _release_parked(self, job: Job, node: Node, now: float) -> None:
        place = (node.pool.id, node.id)
        blocked = job.side_runs.blocks(node, bool(job.spec["jobPreparationTask"].get("waitForSuccess", True)))
        for task, token in job.side_runs.parked.pop(place, []):
            if task.attempt != token or task.removed or task.state != "preparing":
                continue  # requeued, ended or deleted while it waited
            if blocked:
                task_model.requeue(task, now, count=False)
            else:
                self._submit(task, node, token, now)

    def start_releases(self, job: Job, now: float) -> bool:
        """The job is ending: run its release task on every node that ran the preparation task (once).

        Returns:
            True when release tasks were started (the job ends when they are done).
        """
        runs = job.side_runs
        if not job.spec.get("jobReleaseTask") or runs.release_started or not runs.preparation:
            return False
        runs.release_started = True
        started = False
        for (pool_id, node_id), _ in runs.preparation.items():
            pool = self.account.pools.get(pool_id.lower())
            node = pool.nodes.get(node_id) if pool is not None else None
            if node is None or node.removing is not None or node.state in ("unusable", "preempted"):
                continue
            runs.release[(pool_id, node_id)] = self._launch(RELEASE, job, node, now, retry=0)
            started = True
        return started
