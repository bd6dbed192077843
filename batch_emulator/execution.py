"""Running start tasks and tasks in a bounded worker pool through the node runner.

Workers never change the account except to mark a task ``running``; they put what a run produced in
a completion queue and wake the scheduler, which applies it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from batch_emulator.config import TaskRunner
from batch_emulator.faults import FaultInjector
from batch_emulator.models import multi_instance
from batch_emulator.models import tasks as task_model
from batch_emulator.models.account import Account
from batch_emulator.models.jobs import Job
from batch_emulator.models.multi_instance import MultiInstanceRun
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.models.tasks import RunOutcome, Task
from batch_emulator.node.containers.images import image_node_error, pull_image
from batch_emulator.node.containers.runtime import RuntimeNotFoundError
from batch_emulator.node.containers.settings import container_run_spec, pool_registries, settings_refusal
from batch_emulator.node.layout import create_task_dirs, task_paths
from batch_emulator.node.spec import TaskRunResult, TaskRunSpec
from batch_emulator.timefmt import now_ts, parse_duration

_log = logging.getLogger("batch_emulator.execution")
RUNNER_ERROR_CODE = "TaskRunnerError"


@dataclass(frozen=True)
class Preempted:
    """Marker outcome: fault injection preempted the node instead of running the task."""


PREEMPTED = Preempted()


@dataclass
class Completion:
    """A worker's report: which run (node, token, task) ended and how (None: it never started)."""

    kind: str  # "task", "start", "images" (pool images pulled), "setup" (mounts), "preparation" or "release"
    node: Node
    token: int
    outcome: RunOutcome | Preempted | None
    task: Task | None = None
    errors: list[dict[str, Any]] | None = None  # node errors of an "images" or "setup" run
    job: Job | None = None
    multi: MultiInstanceRun | None = None  # the subtask nodes a multi-instance run held
    instances: list[RunOutcome | None] = field(default_factory=list)  # coordination outcomes, primary first


@dataclass(frozen=True)
class MultiInstancePlan:
    """The instances of one multi-instance run: coordination commands (primary first) and the shared dir."""

    run: MultiInstanceRun
    coordination: list[TaskRunSpec]
    shared_dir: Path


def default_runner() -> TaskRunner:
    """Return ``batch_emulator.node.runner.run_task`` (imported late: another package provides it)."""
    from batch_emulator.node import runner

    run_task: TaskRunner = runner.run_task
    return run_task


def outcome_of(result: TaskRunResult) -> RunOutcome:
    """Convert the runner's result to the model's outcome."""
    return RunOutcome(
        exit_code=result.exit_code,
        result=result.result,
        start_time=result.start_time.timestamp(),
        end_time=result.end_time.timestamp(),
        failure_info=result.failure_info,
        usage=result.usage,
    )


def error_outcome(started: float, message: str) -> RunOutcome:
    """The outcome of a run the runner itself failed on (a server error, as Batch reports its own faults)."""
    return RunOutcome(
        exit_code=None,
        result="failure",
        start_time=started,
        end_time=now_ts(),
        failure_info={
            "category": "servererror",
            "code": RUNNER_ERROR_CODE,
            "message": message,
            "details": [{"name": "Message", "value": message}],
        },
    )


def injected_failure(directory: Path, exit_code: int, started: float, what: str) -> RunOutcome:
    """Write the files a failed run leaves and return its outcome (fault injection: no process runs)."""
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


def container_fields(account: Account, pool: Pool, settings: object) -> dict[str, Any]:
    """The ``container`` (or ``refusal``) fields of a run spec for a task's ``containerSettings``.

    Args:
        account: The account (its container runtime).
        pool: The pool the task runs on.
        settings: The task's ``containerSettings`` (wire JSON) or None.

    Returns:
        ``{}`` for a plain task, ``{"container": ...}``, or ``{"refusal": failureInfo}`` when the pool
        has no ``containerConfiguration`` or the machine no runtime.
    """
    if not isinstance(settings, dict):
        return {}
    config = pool.container_configuration
    if config is None:
        reason = f"The pool {pool.id} has no containerConfiguration: tasks with containerSettings need a container pool"
        return {"refusal": settings_refusal(reason)}
    try:
        runtime = account.containers.get()
    except RuntimeNotFoundError as error:
        return {"refusal": settings_refusal(str(error))}
    return {"container": container_run_spec(runtime, settings, config)}


def pull_pool_images(account: Account, images: list[str], config: dict[str, Any]) -> list[dict[str, Any]]:
    """Make a container pool's images present on the machine (blocking; a worker calls it at node start).

    Args:
        account: The account (its container runtime).
        images: ``containerImageNames``.
        config: The pool's ``containerConfiguration`` (its registries).

    Returns:
        Node ``errors[]`` entries, one per image that could not be pulled (empty on success).
    """
    try:
        runtime = account.containers.get()
    except RuntimeNotFoundError as error:
        return [image_node_error(image, str(error)) for image in images]
    registries = pool_registries(config)
    errors = []
    for image in images:
        message = pull_image(runtime, image, registries)
        if message is not None:
            errors.append(image_node_error(image, message))
    return errors


def start_task_spec(account: Account, node: Node, retry: int, batch_url: str) -> TaskRunSpec:
    """What the runner needs to run a pool's start task on a node."""
    pool = node.pool
    start_task: dict[str, Any] = pool.start_task or {}
    return TaskRunSpec(
        kind="start",
        account_name=account.name,
        pool_id=pool.id,
        node_id=node.id,
        node_root=account.node_root(pool.id, node.id),
        job_id=None,
        task_id=None,
        command_line=str(start_task.get("commandLine", "")),
        resource_files=list(start_task.get("resourceFiles") or []),
        environment_settings=list(start_task.get("environmentSettings") or []),
        output_files=[],
        max_wall_clock_seconds=None,
        retry_count=retry,
        batch_url=batch_url,
        storage_endpoint=account.storage_endpoint,
        **container_fields(account, pool, start_task.get("containerSettings")),
    )


def _environment(account: Account, job: Job, node: Node, body: dict[str, Any]) -> list[dict[str, str]]:
    """The job's common environment, then the task's; ``AZ_BATCH_JOB_PREP_*`` when the job has a preparation
    task (``workitems/<job>/job-1/<preparation id>`` and its ``wd``)."""
    environment = {item["name"]: item for item in job.spec.get("commonEnvironmentSettings") or []}
    environment.update({item["name"]: item for item in body.get("environmentSettings") or []})
    settings = [{"name": str(item["name"]), "value": str(item.get("value", ""))} for item in environment.values()]
    preparation = job.spec.get("jobPreparationTask")
    if preparation:
        prep_dir = account.node_root(node.pool.id, node.id) / "workitems" / job.id / "job-1" / str(preparation["id"])
        settings.append({"name": "AZ_BATCH_JOB_PREP_DIR", "value": str(prep_dir)})
        settings.append({"name": "AZ_BATCH_JOB_PREP_WORKING_DIR", "value": str(prep_dir / "wd")})
    return settings


def job_task_spec(account: Account, job: Job, task: Task, node: Node, batch_url: str) -> TaskRunSpec:
    """What the runner needs to run a task on a node (the job's common environment comes first)."""
    body = task.body()
    return _job_spec(account, job, node, task.id, body, task.max_wall, task.retry_count, batch_url, task.attempt)


def multi_instance_specs(
    account: Account, job: Job, task: Task, nodes: list[Node], run: MultiInstanceRun, batch_url: str
) -> tuple[TaskRunSpec, MultiInstancePlan]:
    """The primary's application run and the coordination runs of a multi-instance task on ``nodes``.

    ``AZ_BATCH_TASK_SHARED_DIR`` is one directory for every instance (``<pool>/multiinstance/<job>/<task>``):
    on one machine the instances cannot each have their own directory under one identical path, as nodes do.
    """
    settings = multi_instance.settings(task) or {}
    shared_dir = account.pool_dir(nodes[0].pool.id) / "multiinstance" / job.id / task.id
    coordination = []
    for index, node in enumerate(nodes):
        base = job_task_spec(account, job, task, node, batch_url)
        env = base.environment_settings + multi_instance.environment(nodes, index, str(shared_dir))
        coordination.append(
            replace(
                base,
                command_line=str(settings["coordinationCommandLine"]),
                resource_files=[],
                output_files=[],
                environment_settings=env,
                common_resource_files=list(settings.get("commonResourceFiles") or []),
            )
        )
    primary = job_task_spec(account, job, task, nodes[0], batch_url)
    primary = replace(
        primary,
        environment_settings=primary.environment_settings + multi_instance.environment(nodes, 0, str(shared_dir)),
    )
    return primary, MultiInstancePlan(run, coordination, shared_dir)


def side_task_spec(
    account: Account, job: Job, node: Node, body: dict[str, Any], retry: int, batch_url: str
) -> TaskRunSpec:
    """What the runner needs to run a job preparation or release task (``body``) on a node."""
    constraints = body.get("constraints") or {}
    limit = constraints.get("maxWallClockTime") or body.get("maxWallClockTime")
    seconds = parse_duration(limit).total_seconds() if limit else None
    return _job_spec(account, job, node, str(body["id"]), body, seconds, retry, batch_url, retry + 1)


def _job_spec(
    account: Account,
    job: Job,
    node: Node,
    task_id: str,
    body: dict[str, Any],
    max_wall: float | None,
    retry: int,
    batch_url: str,
    attempt: int,
) -> TaskRunSpec:
    return TaskRunSpec(
        kind="job",
        account_name=account.name,
        pool_id=node.pool.id,
        node_id=node.id,
        node_root=account.node_root(node.pool.id, node.id),
        job_id=job.id,
        task_id=task_id,
        command_line=str(body["commandLine"]),
        resource_files=list(body.get("resourceFiles") or []),
        environment_settings=_environment(account, job, node, body),
        output_files=list(body.get("outputFiles") or []),
        max_wall_clock_seconds=max_wall,
        retry_count=retry,
        batch_url=batch_url,
        storage_endpoint=account.storage_endpoint,
        attempt=attempt,
        **container_fields(account, node.pool, body.get("containerSettings")),
    )


class TaskExecutor:
    """A bounded pool of worker threads, each running one start task or task through the runner."""

    def __init__(
        self,
        account: Account,
        *,
        runner: TaskRunner | None,
        faults: FaultInjector,
        max_workers: int,
        wake: Callable[[], None],
    ) -> None:
        """Create the pool.

        Args:
            account: The account (its lock guards the ``running`` transition).
            runner: Runs one task (default: the node runner package).
            faults: Fault injection in force.
            max_workers: Size of the pool.
            wake: Called after every completion.
        """
        self.account = account
        self.max_workers = max(1, max_workers)
        self.in_flight = 0  # changed by the scheduling thread only
        self._runner = runner
        self._faults = faults
        self._wake = wake
        self._completions: deque[Completion] = deque()
        self._pool = ThreadPoolExecutor(self.max_workers, thread_name_prefix="batch-node")

    @property
    def has_room(self) -> bool:
        """Whether another run can start without waiting for a worker."""
        return self.in_flight < self.max_workers

    def drain(self) -> list[Completion]:
        """Take the completions reported so far."""
        taken = []
        while self._completions:
            taken.append(self._completions.popleft())
        self.in_flight -= len(taken)
        return taken

    def shutdown(self) -> None:
        """Wait for running workers (their processes were told to stop) and drop queued ones."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit_start_task(self, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event) -> None:
        """Run a start task."""
        self.in_flight += 1
        self._pool.submit(self._start_task, node, token, spec, cancel)

    def submit_task(
        self,
        task: Task,
        node: Node,
        token: int,
        spec: TaskRunSpec,
        cancel: threading.Event,
        plan: MultiInstancePlan | None = None,
    ) -> None:
        """Run a job task (with ``plan``: a multi-instance task, ``spec`` being the primary's application)."""
        self.in_flight += 1
        self._pool.submit(self._task, task, node, token, spec, cancel, plan)

    def submit_side_task(
        self, kind: str, job: Job, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event
    ) -> None:
        """Run a job preparation (``kind="preparation"``) or release (``"release"``) task."""
        self.in_flight += 1
        self._pool.submit(self._side_task, kind, job, node, token, spec, cancel)

    def _side_task(
        self, kind: str, job: Job, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event
    ) -> None:
        started = now_ts()
        outcome: RunOutcome | None = None
        try:
            if not cancel.is_set():
                outcome = outcome_of(self._run(spec, cancel))
        except Exception as error:  # noqa: BLE001 - a runner bug must not wedge the job
            _log.exception("%s task runner failed for %s on %s", kind, spec.job_id, spec.node_id)
            outcome = error_outcome(started, f"The node runner failed: {error}")
        finally:
            self._report(Completion(kind, node, token, outcome, job=job))

    def submit_setup(
        self,
        node: Node,
        token: int,
        work: Callable[[threading.Event], list[dict[str, Any]]],
        cancel: threading.Event,
    ) -> None:
        """Run a node setup step (returns the node errors it ran into, none on success)."""
        self.in_flight += 1
        self._pool.submit(self._setup, node, token, work, cancel)

    def _setup(
        self, node: Node, token: int, work: Callable[[threading.Event], list[dict[str, Any]]], cancel: threading.Event
    ) -> None:
        errors: list[dict[str, Any]] = []
        try:
            errors = work(cancel)
        except Exception as error:  # noqa: BLE001 - a setup bug must not wedge the node
            _log.exception("node setup failed on %s", node.id)
            errors = [{"code": RUNNER_ERROR_CODE, "message": f"The node setup failed: {error}"}]
        finally:
            self._report(Completion("setup", node, token, None, errors=errors))

    def submit_image_pulls(self, node: Node, token: int, images: list[str], config: dict[str, Any]) -> None:
        """Pull a container pool's images for a starting node."""
        self.in_flight += 1
        self._pool.submit(self._pull_images, node, token, images, config)

    def _pull_images(self, node: Node, token: int, images: list[str], config: dict[str, Any]) -> None:
        errors: list[dict[str, Any]] = []
        try:
            errors = pull_pool_images(self.account, images, config)
        except Exception as error:  # noqa: BLE001 - a puller bug must not wedge the node
            _log.exception("pulling container images failed on %s", node.id)
            errors = [image_node_error(image, f"The node runner failed: {error}") for image in images]
        finally:
            self._report(Completion("images", node, token, None, errors=errors))

    def _run(self, spec: TaskRunSpec, cancel: threading.Event) -> TaskRunResult:
        if self._runner is None:
            self._runner = default_runner()
        return self._runner(spec, cancel)

    def _report(self, completion: Completion) -> None:
        self._completions.append(completion)
        self._wake()

    def _start_task(self, node: Node, token: int, spec: TaskRunSpec, cancel: threading.Event) -> None:
        started = now_ts()
        outcome: RunOutcome | None = None
        try:
            if cancel.is_set():
                outcome = None
            elif self._faults.start_task_fails(spec.pool_id):
                outcome = injected_failure(spec.node_root / "startup", 1, started, "The start task")
            else:
                outcome = outcome_of(self._run(spec, cancel))
        except Exception as error:  # noqa: BLE001 - a runner bug must not wedge the node
            _log.exception("start task runner failed on %s", spec.node_id)
            outcome = error_outcome(started, f"The node runner failed: {error}")
        finally:
            self._report(Completion("start", node, token, outcome))

    def _task(
        self,
        task: Task,
        node: Node,
        token: int,
        spec: TaskRunSpec,
        cancel: threading.Event,
        plan: MultiInstancePlan | None,
    ) -> None:
        outcome: RunOutcome | Preempted | None = None
        instances: list[RunOutcome | None] = []
        started = now_ts()
        # A running task's files can be listed at once (as on Batch): its directories exist before it is running.
        with contextlib.suppress(OSError, ValueError):  # the runner reports what cannot be created
            create_task_dirs(task_paths(spec))
        try:
            with self.account.lock:
                running = task_model.mark_running(task, token, started)
                if running:
                    self.account.stats.tasks_started += 1
            if running and not cancel.is_set():
                if plan is None:
                    outcome = self._execute(spec, cancel, started)
                else:
                    outcome, instances = self._execute_multi(spec, plan, cancel, started)
        except Exception as error:  # noqa: BLE001 - a runner bug must not wedge the job
            _log.exception("task runner failed for %s/%s", spec.job_id, spec.task_id)
            outcome = error_outcome(started, f"The node runner failed: {error}")
        finally:
            multi = plan.run if plan is not None else None
            self._report(Completion("task", node, token, outcome, task, multi=multi, instances=instances))

    def _execute_multi(
        self, spec: TaskRunSpec, plan: MultiInstancePlan, cancel: threading.Event, started: float
    ) -> tuple[RunOutcome, list[RunOutcome | None]]:
        """Coordination commands on every instance at once, then (if all succeeded) the primary's command."""
        plan.shared_dir.mkdir(parents=True, exist_ok=True)
        results: list[RunOutcome | None] = [None] * len(plan.coordination)

        def coordinate(index: int, instance: TaskRunSpec) -> None:
            try:
                results[index] = outcome_of(self._run(instance, cancel))
            except Exception as error:  # noqa: BLE001 - reported as the instance's failure
                results[index] = error_outcome(started, f"The node runner failed: {error}")

        threads = [
            threading.Thread(target=coordinate, args=(index, instance), name=f"batch-instance-{index}")
            for index, instance in enumerate(plan.coordination)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failed = next((result for result in results if result is None or result.result != "success"), None)
        if failed is not None or cancel.is_set():
            return failed or error_outcome(started, "The coordination command did not run."), results
        return outcome_of(self._run(spec, cancel)), results

    def _execute(self, spec: TaskRunSpec, cancel: threading.Event, started: float) -> RunOutcome | Preempted:
        job_id, task_id = spec.job_id or "", spec.task_id or ""
        if self._faults.preempt(job_id, task_id):
            return PREEMPTED
        exit_code = self._faults.task_exit_code(task_id)
        if exit_code is not None:
            directory = spec.node_root / "workitems" / job_id / "job-1" / task_id
            return injected_failure(directory, exit_code, started, "The task")
        return outcome_of(self._run(spec, cancel))
