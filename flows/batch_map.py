"""The general flow: run any program over many inputs on Azure Batch (or the local Batch service).

``batch_map`` is the flow; :func:`run_map` is its body, which the tutorial's ``top_words_pipeline`` reuses. Every
run reconciles what exists with what is wanted (see :mod:`batchpipe.reconcile`) before and after monitoring, so
the same call resumes after a crash, a kept or deleted job, or lost blobs.
"""

# No `from __future__ import annotations`: Prefect builds the run form (and pickles served flows) from real types.
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.states import Failed
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from batchpipe.clients import batch_client, blob_service_client, uses_entra_id_for_storage
from batchpipe.errors import BatchpipeError, ConfigurationError, PipelineFailed
from batchpipe.manifest import (
    MANIFEST_NAME,
    build_manifest,
    input_record,
    read_manifest,
    verified_on_disk,
    write_manifest,
)
from batchpipe.naming import InputFile
from batchpipe.reconcile import Action, Decision, InputState, choose_job, decide, summarise
from batchpipe.sas import SasSigner, with_token
from batchpipe.settings import Settings, load_settings
from batchpipe.workload import (
    OUTPUT_DIR,
    OUTPUT_LIST,
    NodeApp,
    application_artifact,
    attempt_task_id,
    check_environment_names,
    check_output_pattern,
    check_template,
    check_unique_keys,
    fixed_prefix,
    has_wildcard,
    is_blob_input,
    job_id_for_generation,
    output_list_blob,
    output_prefix,
    package_app,
    parse_blob_input,
    parse_seconds,
    placeholder_values,
    render_command,
    render_pattern,
    resolve_map_inputs,
    run_id_for,
    template_fields,
    unescape_glob,
    wrap_command,
)
from tasks._common import azure_call
from tasks.capacity import check_capacity
from tasks.cleanup import ApprovalMode, delete_job, delete_pool
from tasks.job import ensure_job, terminate_job_when_tasks_complete
from tasks.monitoring import read_counts, wait_for_tasks
from tasks.pool import ensure_pool, find_image, reboot_failed_nodes
from tasks.reconcile import StoredOutputs, find_input_tasks, find_run_jobs, find_stored_outputs, verify_outputs
from tasks.storage import (
    UploadReport,
    create_containers,
    delete_containers,
    download_outputs,
    list_blob_inputs,
    upload_files,
)
from tasks.submission import MapTask, add_tasks, map_task_definition

# SAS tokens outlive the monitoring timeout by this much (pool start-up, downloads).
SAS_MARGIN_SECONDS = 1800
# Submit → monitor → reconcile rounds in one run: the first, then one more for outputs lost after success.
MAX_ROUNDS = 3
RESULTS_KEY = "batchpipe-map-results"


@dataclass(frozen=True)
class MapSpec:
    """What to run for each input: the application, the command, what it produces, and what each task needs.

    Attributes:
        command: the command template (a shell command line with placeholders, see docs/workloads.md).
        output_patterns: files the command writes under ``{output_dir}`` (globs, with placeholders).
        app: how the application reaches the nodes.
        parameters: user placeholders.
        environment: environment settings for every task (plain values).
        secret_names: names of variables read from this process's environment and passed to the tasks as
            environment settings (never on a command line, never logged).
        required_slots: task slots each task occupies.
        max_wall_clock_seconds: a task running longer is ended (default: the monitoring timeout).
        max_retries: Batch retries of a failed task (default: BATCHPIPE_MAX_TASK_RETRIES).
        container_image: run each task in this container image.
        application_package: ``(application id, version)`` installed by Batch.
        task_prefix: task ids start with this.
        describe: the task's display name from its input key.
        output_sas_variable: also give each task the output container's create+write SAS in this variable (for
            programs that upload more themselves; Batch uploads the output patterns either way).
    """

    command: str
    output_patterns: list[str]
    app: NodeApp
    parameters: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    secret_names: list[str] = field(default_factory=list)
    required_slots: int = 1
    max_wall_clock_seconds: float | None = None
    max_retries: int | None = None
    container_image: str | None = None
    application_package: tuple[str, str | None] | None = None
    task_prefix: str = "map"
    describe: Callable[[str], str] | None = None
    output_sas_variable: str | None = None

    def recipe(self) -> dict[str, object]:
        """What identifies the work (for the run id): everything but secret values and limits."""
        return {
            "command": self.command,
            "outputs": self.output_patterns,
            "app": self.app.artifact.sha256 if self.app.artifact else self.app.location,
            "parameters": sorted(self.parameters.items()),
            "environment": sorted(self.environment.items()),
            "secrets": sorted(self.secret_names),
            "image": self.container_image,
        }

    def check(self) -> None:
        """Check the templates, patterns and names before anything is created.

        Raises:
            ConfigurationError: what to fix.
        """
        check_template(self.command, self.parameters)
        if not self.output_patterns:
            raise ConfigurationError("give at least one output pattern (--output-pattern), e.g. '{input_stem}.out'")
        for pattern in self.output_patterns:
            check_template(pattern, self.parameters, what="output pattern")
            check_output_pattern(pattern)
        check_environment_names([*self.environment, *self.secret_names])
        if self.required_slots < 1:
            raise ConfigurationError(f"required slots must be at least 1 (got {self.required_slots})")
        missing = [name for name in self.secret_names if not os.environ.get(name)]
        if missing:
            raise ConfigurationError(f"secret {missing[0]} is not set in the environment: export it before the run")


@dataclass
class InputOutcome:
    """What a run did for one input and where it ended."""

    item: InputFile
    decision: Decision | None = None
    history: list[str] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reused: bool = False


@dataclass
class MapResult:
    """The result of :func:`run_map`."""

    run_id: str
    job_id: str
    job_ids: list[str]
    job_created: bool
    pool_id: str
    pool_created: bool
    output_dir: Path
    manifest_path: Path
    outcomes: list[InputOutcome]
    uploaded: int
    containers: str
    decided_by: str
    job: str
    pool: str
    failed_tasks: list[str]
    stderr: dict[str, str] = field(default_factory=dict)  # failed task id → last line of its stderr

    @property
    def missing(self) -> list[InputOutcome]:
        """Inputs whose outputs are not all verified on disk."""
        return [o for o in self.outcomes if not o.outputs]

    def summary(self) -> dict[str, Any]:
        """A plain dict (the flow's return value)."""
        return {
            "run_id": self.run_id,
            "job_id": self.job_id,
            "job_ids": self.job_ids,
            "job_created": self.job_created,
            "pool_id": self.pool_id,
            "pool_created": self.pool_created,
            "output_dir": str(self.output_dir),
            "manifest": str(self.manifest_path),
            "uploaded": self.uploaded,
            "containers": self.containers,
            "decided_by": self.decided_by,
            "job": self.job,
            "pool": self.pool,
            "failed_tasks": self.failed_tasks,
            "inputs": [
                {
                    "key": o.item.blob_name,
                    "status": "verified" if o.outputs else "missing",
                    "reused": o.reused,
                    "reason": o.decision.reason if o.decision else "",
                    "history": o.history,
                    "outputs": [str(self.output_dir / out["path"]) for out in o.outputs],
                }
                for o in self.outcomes
            ],
        }


def _uploaded_count(future: PrefectFuture[UploadReport]) -> int:
    report = future.result()
    return 0 if future.state.name == "Cached" else len(report.uploaded)


class _Storage:
    """SAS URLs for one run (lifetime bounded by the monitoring timeout)."""

    def __init__(self, settings: Settings, margin_seconds: float) -> None:
        client = blob_service_client(settings)
        account_key = None if uses_entra_id_for_storage(settings) else client.credential.account_key
        lifetime = timedelta(seconds=settings.monitor_timeout + margin_seconds)
        self.signer = SasSigner.for_client(client, lifetime, account_key)
        self.base = client.url.rstrip("/")

    def read_url(self, container: str, blob: str) -> str:
        return with_token(f"{self.base}/{container}/{blob}", self.signer.blob_read_token(container, blob))

    def plain_url(self, container: str, blob: str) -> str:
        return f"{self.base}/{container}/{blob}"


def _task_for(
    spec: MapSpec,
    settings: Settings,
    run_id: str,
    item: InputFile,
    index: int,
    attempt: int,
    input_url: str,
    output_sas: str,
) -> MapTask:
    """The task for one input's attempt (pure apart from reading the secrets' values from the environment)."""
    values = placeholder_values(item, index) | spec.parameters
    patterns = [render_pattern(p, values) for p in spec.output_patterns]
    task_id = attempt_task_id(spec.task_prefix, item.blob_name, attempt)
    prefix = output_prefix(run_id, item.blob_name)
    outputs: list[tuple[str, str, str]] = []
    for pattern in patterns:
        # With a wildcard, the path is a blob directory (matches keep their path below the fixed part).
        if has_wildcard(pattern):
            path = "/".join(filter(None, [prefix, fixed_prefix(pattern)]))
        else:
            path = f"{prefix}/{unescape_glob(pattern)}"
        outputs.append((f"{OUTPUT_DIR}/{pattern}", path, "tasksuccess"))
    outputs.append((OUTPUT_LIST, output_list_blob(run_id, item.blob_name), "tasksuccess"))
    outputs += [(f"../{n}", f"{run_id}/logs/{task_id}/{n}", "taskcompletion") for n in ("stdout.txt", "stderr.txt")]
    secrets = {name: os.environ[name] for name in spec.secret_names}
    if spec.output_sas_variable:
        secrets[spec.output_sas_variable] = output_sas
    name = spec.describe(item.blob_name) if spec.describe else f"{item.blob_name}"
    return MapTask(
        task_id=task_id,
        display_name=f"{name} (attempt {attempt})" if attempt else name,
        command_line=wrap_command(render_command(spec.command, values, spec.app.location), patterns),
        resource_files=[(input_url, item.blob_name)],
        output_files=outputs,
        environment=spec.environment | secrets,
        required_slots=spec.required_slots,
        max_wall_clock_seconds=spec.max_wall_clock_seconds or settings.monitor_timeout,
        max_retries=settings.max_task_retries if spec.max_retries is None else spec.max_retries,
        container_image=spec.container_image,
        application_package=spec.application_package,
    )


def _observe(
    settings: Settings,
    run_id: str,
    spec: MapSpec,
    outcomes: dict[str, InputOutcome],
    keys: list[str],
) -> tuple[dict[int, str], list[InputState], dict[str, StoredOutputs]]:
    jobs = find_run_jobs(settings, run_id)
    tasks = find_input_tasks(settings, run_id, jobs, spec.task_prefix, keys)
    stored = find_stored_outputs(settings, settings.output_container, run_id, keys)
    states = [
        InputState(
            key=key,
            on_disk=bool(outcomes[key].outputs),
            in_storage=key in stored,
            tasks=tuple(tasks.get(key, [])),
        )
        for key in keys
    ]
    return jobs, states, stored


def run_map(
    settings: Settings,
    files: list[InputFile],
    spec: MapSpec,
    run_id: str,
    output_dir: Path,
    approval: ApprovalMode,
    keep_containers: bool,
    request_approval: Callable[[ApprovalMode, Settings, str, str], Any],
    manifest_path: Path | None = None,
    sas_margin_seconds: float = SAS_MARGIN_SECONDS,
) -> MapResult:
    """The general flow's body: reconcile, stage, submit, monitor, reconcile again, download, clean up.

    Args:
        settings: the run's settings.
        files: the inputs (``blob_name`` is the input key).
        spec: what to run for each input.
        run_id: the deterministic run id (the first job's id and the outputs' blob prefix).
        output_dir: the run's output directory (outputs mirror the input keys; ``manifest.json`` beside them).
        approval: how the approval step is answered.
        keep_containers: keep the blob containers after a complete run.
        request_approval: the approval step (returns an object with ``delete_job``, ``delete_pool``, ``decided_by``).
        manifest_path: where the manifest goes (default: ``manifest.json`` in ``output_dir``).
        sas_margin_seconds: how much longer than the monitoring timeout the SAS tokens live.

    Returns:
        What happened, per input.

    Raises:
        ConfigurationError, CloudError: a setting or a service refused; the message says what is left in place.
    """
    logger = get_run_logger()
    spec.check()
    manifest_path = manifest_path or output_dir / MANIFEST_NAME
    previous = read_manifest(manifest_path)
    outcomes = {item.blob_name: InputOutcome(item) for item in files}
    for item in files:
        reused = verified_on_disk(previous, item, output_dir)
        if reused:
            outcomes[item.blob_name].outputs = reused
            outcomes[item.blob_name].reused = True
            outcomes[item.blob_name].history.append("reused: outputs verified on disk")
    keys = [item.blob_name for item in files]
    index = {item.blob_name: i for i, item in enumerate(files)}
    storage = _Storage(settings, sas_margin_seconds)
    containers = [settings.application_container, settings.input_container, settings.output_container]
    uploaded = 0
    pool_created = job_created = False
    job_id = run_id
    failed_ids: list[str] = []
    stderr: dict[str, str] = {}
    made: list[str] = []
    image = None
    jobs: dict[int, str] = {}
    rerun_lost_done: set[str] = set()
    try:
        for round_number in range(MAX_ROUNDS):
            todo = [k for k in keys if not outcomes[k].outputs]
            if not todo:
                break
            if image is None:  # pre-flight and the first contact with each service: fail at once when unreachable
                image = find_image(settings)
                check_capacity(settings, run_id)
                create_containers(settings, containers)
                made.append(f"containers {', '.join(containers)}")
            jobs, states, stored = _observe(settings, run_id, spec, outcomes, todo)
            decisions = [
                decide(s, rerun_failed=round_number == 0, rerun_lost=s.key not in rerun_lost_done) for s in states
            ]
            for decision in decisions:
                outcomes[decision.key].decision = decision
            counts = summarise(decisions)
            logger.info(
                "Reconcile (round %d): %s",
                round_number + 1,
                ", ".join(f"{n} {a}" for a, n in counts.items() if n) or "nothing to do",
            )
            for decision in decisions:
                if decision.action in (Action.SUBMIT, Action.GIVE_UP):
                    logger.info("  %s: %s %s", decision.key, decision.action.value, decision.reason)
            downloads = [d.key for d in decisions if d.action == Action.DOWNLOAD]
            _download(settings, run_id, output_dir, storage, outcomes, downloads, stored)
            submit = [d for d in decisions if d.action == Action.SUBMIT]
            wait = [d for d in decisions if d.action == Action.WAIT]
            if not submit and not wait:
                break
            # Tasks about to run (new or still queued from a crashed run) need their inputs, the application and a
            # pool whose nodes run it: storage may have lost what an earlier run staged.
            uploaded += _stage(settings, spec, [outcomes[d.key].item for d in submit + wait])
            pool = _ensure_pool(settings, spec, image, storage)
            pool_created = pool_created or bool(pool["created"])
            if f"pool {settings.pool_id}" not in made:
                made.insert(0, f"pool {settings.pool_id}")
            if submit:
                generation, exists = choose_job(jobs)
                job_id = job_id_for_generation(run_id, generation)
                if not exists:
                    why = (
                        "a new run"
                        if generation == 1
                        else f"job {job_id_for_generation(run_id, generation - 1)} has ended"
                    )
                    logger.info("New job %s (%s)", job_id, why)
                job_created = bool(ensure_job(settings, job_id)["created"]) or job_created
                if f"job {job_id}" not in made:
                    made.insert(0, f"job {job_id}")
                sas = storage.signer.container_write_token(settings.output_container)
                container_url = storage.plain_url(settings.output_container, "").rstrip("/")
                definitions = []
                for decision in submit:
                    item = outcomes[decision.key].item
                    url = storage.read_url(
                        item.container or settings.input_container, item.source_blob or item.blob_name
                    )
                    task_spec = _task_for(
                        spec, settings, run_id, item, index[item.blob_name], decision.attempt or 0, url, sas
                    )
                    definitions.append(map_task_definition(task_spec, container_url, sas))
                    outcomes[decision.key].history.append(f"submitted {task_spec.task_id}: {decision.reason}")
                    if decision.task is not None and decision.task.result == "success":  # its outputs were lost
                        rerun_lost_done.add(decision.key)
                add_tasks(settings, job_id, definitions)
            else:
                job_id = wait[0].task.job_id if wait[0].task else job_id
            terminate_job_when_tasks_complete(settings, job_id)  # again after a crash: idempotent
            expected = _task_count(settings, job_id)
            result = wait_for_tasks(settings, job_id, expected)
            failed_ids = sorted({f.task_id for f in result.failed} | set(failed_ids))
            stderr |= {f.task_id: f.stderr_tail.splitlines()[-1] for f in result.failed if f.stderr_tail.strip()}
        else:
            todo = [k for k in keys if not outcomes[k].outputs]
            if todo:  # the last round's monitoring ended: what did it produce?
                jobs, states, stored = _observe(settings, run_id, spec, outcomes, todo)
                final = [decide(state, rerun_failed=False, rerun_lost=False) for state in states]
                for decision in final:
                    outcomes[decision.key].decision = decision
                downloads = [d.key for d in final if d.action == Action.DOWNLOAD]
                _download(settings, run_id, output_dir, storage, outcomes, downloads, stored)
    except BatchpipeError as error:
        if any(o.outputs for o in outcomes.values()):  # record what is verified; else create nothing
            _write(manifest_path, run_id, [], settings, output_dir, outcomes)
        if made:
            raise type(error)(f"{error.message}. Left in place for a rerun: {', '.join(made)}") from None
        raise
    jobs = find_run_jobs(settings, run_id) if made or jobs else {}
    job_ids = [job_id_for_generation(run_id, g) for g in sorted(jobs)]
    if job_ids and job_id not in job_ids:
        job_id = job_ids[-1]
    _write(manifest_path, run_id, job_ids, settings, output_dir, outcomes)
    missing = [o for o in outcomes.values() if not o.outputs]
    _results_artifact(run_id, outcomes, output_dir)
    # The step whose purpose is verified outputs: red in the UI, with the run's one line, when some are missing.
    verify_outputs(
        len(outcomes) - len(missing),
        _missing_line(list(outcomes.values()), stderr, output_dir, manifest_path) if missing else "",
        return_state=True,
    )

    # Containers go only when every output is verified on disk.
    if not missing and not keep_containers:
        delete_containers(settings, containers)
        containers_state = "deleted"
    else:
        containers_state = "kept" + ("" if not missing else " (outputs incomplete)")

    decision = request_approval(approval, settings, job_id, settings.pool_id)
    job_deleted = False
    if decision.delete_job:
        if not (made or jobs):  # nothing was needed in this run: find the jobs earlier runs kept
            job_ids = [job_id_for_generation(run_id, g) for g in sorted(find_run_jobs(settings, run_id))]
        for old in job_ids or [job_id]:
            job_deleted = bool(delete_job(settings, old)) or job_deleted
    pool_deleted = delete_pool(settings, settings.pool_id) if decision.delete_pool else False
    return MapResult(
        run_id=run_id,
        job_id=job_id,
        job_ids=job_ids,
        job_created=job_created,
        pool_id=settings.pool_id,
        pool_created=pool_created,
        output_dir=output_dir,
        manifest_path=manifest_path,
        outcomes=list(outcomes.values()),
        uploaded=uploaded,
        containers=containers_state,
        decided_by=decision.decided_by,
        job="deleted" if job_deleted else ("kept" if not decision.delete_job else "already gone"),
        pool="deleted" if pool_deleted else ("kept" if not decision.delete_pool else "already gone"),
        failed_tasks=failed_ids,
        stderr=stderr,
    )


def _task_count(settings: Settings, job_id: str) -> int:
    with azure_call("Batch", f"reading task counts of job {job_id!r}"):
        return read_counts(batch_client(settings), job_id).total


def _stage(settings: Settings, spec: MapSpec, items: list[InputFile]) -> int:
    # Tasks are about to read these blobs: look (one listing per container) instead of trusting Prefect's cache,
    # which would also answer for blobs Azurite lost in a crash. Unchanged blobs are still not uploaded again.
    upload = upload_files.with_options(refresh_cache=True)
    local = [item for item in items if item.container is None]  # inputs already in storage stay where they are
    uploads = [upload.submit(settings, settings.input_container, local)] if local else []
    if spec.app.artifact is not None:
        uploads.append(upload.submit(settings, settings.application_container, [spec.app.artifact]))
    return sum(_uploaded_count(future) for future in uploads)


def _ensure_pool(settings: Settings, spec: MapSpec, image: Any, storage: _Storage) -> dict[str, Any]:
    artifact = spec.app.artifact
    url = storage.read_url(settings.application_container, artifact.blob_name) if artifact else None
    pool: dict[str, Any] = ensure_pool(
        settings, image, artifact.blob_name if artifact else None, url, spec.app.start_command, spec.container_image
    )
    if not pool["created"]:  # an earlier run's pool: nodes whose start task failed run the refreshed one again
        reboot_failed_nodes(settings, settings.pool_id)
    return pool


def _download(
    settings: Settings,
    run_id: str,
    output_dir: Path,
    storage: _Storage,
    outcomes: dict[str, InputOutcome],
    keys: list[str],
    stored: dict[str, StoredOutputs],
) -> None:
    if not keys:
        return
    blobs = [name for key in keys for name in stored[key].blobs]
    report = download_outputs(settings, settings.output_container, blobs, output_dir, f"{run_id}/")
    by_blob = {d.blob_name: d for d in report.downloaded}
    for key in keys:
        files = [by_blob.get(name) for name in stored[key].blobs]
        if all(files):
            outcomes[key].outputs = [
                {
                    "path": f.path.relative_to(output_dir).as_posix(),
                    "blob": f.blob_name,
                    "url": storage.plain_url(settings.output_container, f.blob_name),
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in files
                if f is not None
            ]
            outcomes[key].history.append("downloaded and verified")
        else:
            outcomes[key].history.append("download failed: " + "; ".join(report.missing.values())[:300])


def _write(
    path: Path,
    run_id: str,
    job_ids: list[str],
    settings: Settings,
    output_dir: Path,
    outcomes: dict[str, InputOutcome],
) -> Path:
    records = []
    for outcome in outcomes.values():
        decision = outcome.decision
        if outcome.outputs:
            status, reason = "verified", ("reused from a previous run" if outcome.reused else "produced in this run")
        else:
            status = "missing"
            reason = decision.reason if decision else "not attempted"
        records.append(
            input_record(
                outcome.item, status, reason, outcome.history, decision.task if decision else None, outcome.outputs
            )
        )
    counts = {
        "verified": sum(1 for r in records if r["status"] == "verified"),
        "reused": sum(1 for o in outcomes.values() if o.reused),
        "missing": sum(1 for r in records if r["status"] == "missing"),
    }
    return write_manifest(path, build_manifest(run_id, job_ids, settings.pool_id, output_dir, counts, records))


def _results_artifact(run_id: str, outcomes: dict[str, InputOutcome], output_dir: Path) -> None:
    rows = []
    for outcome in outcomes.values():
        task = outcome.decision.task if outcome.decision else None
        rows.append(
            {
                "input": outcome.item.blob_name,
                "status": "verified" if outcome.outputs else "missing",
                "task state": (task.result or task.state) if task else ("reused" if outcome.reused else "-"),
                "exit code": "" if task is None or task.exit_code is None else str(task.exit_code),
                "duration (s)": "" if task is None or task.duration_seconds is None else f"{task.duration_seconds:.1f}",
                "outputs": " ".join(f"[{o['path']}]({o['url']})" for o in outcome.outputs),
                "why": outcome.history[-1] if outcome.history else "",
            }
        )
    create_table_artifact(rows, key=RESULTS_KEY, description=f"Inputs of run {run_id}; outputs in {output_dir}")


def missing_line(result: MapResult) -> str:
    """One line naming the inputs that could not be produced and why."""
    return _missing_line(result.outcomes, result.stderr, result.output_dir, result.manifest_path)


def _missing_line(outcomes: list[InputOutcome], stderr: dict[str, str], output_dir: Path, manifest_path: Path) -> str:
    missing = [o for o in outcomes if not o.outputs]

    def why(outcome: InputOutcome) -> str:
        if outcome.decision is None:
            return "not attempted"
        task = outcome.decision.task
        last = stderr.get(task.task_id, "") if task else ""
        return outcome.decision.reason + (f", stderr: {last[:160]}" if last else "")

    shown = "; ".join(f"{o.item.blob_name}: {why(o)}" for o in missing[:5])
    more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
    return (
        f"{len(missing)} of {len(outcomes)} input(s) not produced: {shown}{more}; "
        f"{len(outcomes) - len(missing)} verified in {output_dir} "
        f"(details in {manifest_path.name}; rerun the same command to retry)"
    )


def reconcile_counts(result: MapResult) -> str:
    """What was reused and redone, in a few words (``3 reused, 1 downloaded, 2 ran``)."""
    reused = sum(1 for o in result.outcomes if o.reused)
    ran = sum(1 for o in result.outcomes if any(h.startswith("submitted") for h in o.history))
    downloaded = sum(
        1
        for o in result.outcomes
        if not any(h.startswith("submitted") for h in o.history) and any(h.startswith("downloaded") for h in o.history)
    )
    missing = len(result.missing)
    parts = [f"{reused} reused", f"{downloaded} downloaded", f"{ran} ran", f"{missing} missing"]
    return ", ".join(parts)


def build_spec(
    command: str,
    output_patterns: list[str],
    app: str | None = None,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    required_slots: int = 1,
    max_wall_clock: str | None = None,
    retries: int | None = None,
    image: str | None = None,
    app_package: str | None = None,
    build_dir: Path = Path(".batchpipe/build"),
) -> MapSpec:
    """A :class:`MapSpec` from plain values (the flow's parameters, the CLI's options), checked.

    Raises:
        ConfigurationError, InputError: what to fix.
    """
    package = None
    if app and app_package:
        raise ConfigurationError("give either --app or --app-package, not both")
    if app_package:
        app_id, version, node_app = package_app(app_package)
        package = (app_id, version)
    elif app:
        node_app = application_artifact(Path(app), build_dir.resolve())
    else:
        node_app = NodeApp(None, "", None)
    spec = MapSpec(
        command=command,
        output_patterns=list(output_patterns),
        app=node_app,
        parameters=dict(parameters or {}),
        environment=dict(environment or {}),
        secret_names=list(secrets or []),
        required_slots=required_slots,
        max_wall_clock_seconds=parse_seconds(max_wall_clock, "max wall clock time") if max_wall_clock else None,
        max_retries=retries,
        container_image=image or None,
        application_package=package,
    )
    if not node_app.location and "app" in template_fields(command):
        raise ConfigurationError("the command uses {app} but no application was given: pass --app or --app-package")
    if retries is not None and not 0 <= retries <= 100:
        raise ConfigurationError(f"retries must be between 0 and 100 (got {retries})")
    spec.check()
    return spec


# Bounded: the default runner is unbounded, and steps already parallelise their own transfers.
@flow(name="batchpipe-map", task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=4)), log_prints=True)
def batch_map(
    inputs: list[str],
    command: str,
    output_patterns: list[str],
    app: str | None = None,
    output_dir: str = "outputs",
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
    secrets: list[str] | None = None,
    required_slots: Annotated[int, Field(ge=1, le=256)] = 1,
    max_wall_clock: str | None = None,
    retries: Annotated[int | None, Field(ge=0, le=100)] = None,
    image: str | None = None,
    app_package: str | None = None,
    approval: ApprovalMode = "wait",
    keep_containers: bool = False,
    pool_id: str | None = None,
) -> dict[str, Any]:
    """Run a command over many inputs on Azure Batch (or the local Batch service), one task per input.

    Args:
        inputs: files, directories, globs, or ``blob://container/prefix`` for blobs already in storage; outputs
            mirror their paths relative to where they were found.
        command: the command template, e.g. ``gzip -c {input} > {output_dir}/{input_name}.gz`` (docs/workloads.md).
        output_patterns: what each task writes under ``{output_dir}``, e.g. ``{input_name}.gz`` or ``*.json``.
        app: a directory (shipped as an archive) or a file (script, binary, zipapp) staged on every node: ``{app}``.
        output_dir: the outputs go to ``<output_dir>/<run id>/``, with ``manifest.json``.
        parameters: your own placeholders (``{name}``).
        environment: environment variables for every task.
        secrets: names of variables of this process's environment passed to the tasks (never on a command line,
            never logged).
        required_slots: task slots each task needs (``BATCHPIPE_TASK_SLOTS_PER_NODE`` per node).
        max_wall_clock: a task running longer is ended (``30m``; default: the monitoring timeout).
        retries: Batch retries of a failed task (default: ``BATCHPIPE_MAX_TASK_RETRIES``).
        image: run every task in this container image.
        app_package: an application package ``NAME[:VERSION]`` of the Batch account (``{app}`` is its directory).
        approval: ``wait`` (UI/API/``batchpipe approve``), ``ask`` (also the terminal), ``yes`` or ``no``.
        keep_containers: keep the blob containers after a complete run.
        pool_id: pool to create or reuse (default: ``BATCHPIPE_POOL_ID``).

    Returns:
        A summary: run and job ids, the output directory and manifest, per input what was reused or redone.

    Raises:
        InputError, ConfigurationError: bad input or settings, before anything is created.
        PipelineFailed: some inputs could not be produced (one line naming them and why; the others are verified).
        CloudError: Azure refused an operation.
    """
    from flows.approval import request_approval

    logger = get_run_logger()
    settings = load_settings(pool_id=pool_id)
    if settings.target == "azure":
        settings.require_azure()
    files = resolve_map_inputs(inputs)
    for pattern in filter(is_blob_input, inputs):
        files += list_blob_inputs(settings, *parse_blob_input(pattern))
    files = check_unique_keys(files)
    spec = build_spec(
        command,
        output_patterns,
        app,
        parameters,
        environment,
        secrets,
        required_slots,
        max_wall_clock,
        retries,
        image,
        app_package,
    )
    run_id = map_run_id(files, spec, settings.pool_id)
    out_dir = Path(output_dir).expanduser().resolve() / run_id
    logger.info("Run %s: %d inputs, outputs in %s", run_id, len(files), out_dir)
    try:
        result = run_map(settings, files, spec, run_id, out_dir, approval, keep_containers, request_approval)
    except ConfigurationError as error:
        return refused(error)
    summary = result.summary() | {"reconcile": reconcile_counts(result)}
    create_markdown_artifact(_summary_markdown(result), key="batchpipe-map-summary", description="What this run did")
    logger.info("Inputs: %s; manifest %s", summary["reconcile"], result.manifest_path)
    if result.missing:
        raise PipelineFailed(missing_line(result))
    return summary


def refused(error: ConfigurationError) -> dict[str, Any]:
    """The flow's final state for a setting the run refused (an unsupported ``BATCHPIPE_IMAGE``, an incompatible
    pool): Failed, with the error's one line as its message.

    A flow that returns a state ends in it (Prefect: "return a state to set the final state"), so the message is
    logged once, as ``Finished in state Failed(...)``, instead of again as "Encountered exception" with a traceback.
    A caller of the flow still gets ``error`` raised (``return_state=True`` gets the state); typed as
    the flows' return type (cast): their callers never receive the state as a return value.
    """
    return cast("dict[str, Any]", Failed(message=error.message, data=error))


def map_run_id(files: list[InputFile], spec: MapSpec, pool_id: str) -> str:
    """The general flow's run id: ``map-<hash of the inputs, the spec's recipe and the pool>``."""
    return run_id_for(files, spec.recipe() | {"pool": pool_id}, prefix="map")


def _summary_markdown(result: MapResult) -> str:
    lines = [
        f"# batchpipe map run `{result.run_id}`",
        "",
        f"- inputs: {reconcile_counts(result)}",
        f"- jobs: {', '.join(f'`{j}`' for j in result.job_ids) or 'none'} ({result.job})",
        f"- pool: `{result.pool_id}` ({result.pool})",
        f"- containers: {result.containers}",
        f"- approval: {result.decided_by}",
        f"- outputs: `{result.output_dir}`, manifest `{result.manifest_path.name}`",
    ]
    redone = [o for o in result.outcomes if any(h.startswith("submitted") for h in o.history)]
    if redone:
        lines += ["", "## Tasks submitted in this run", ""]
        lines += [f"- `{o.item.blob_name}`: {'; '.join(o.history)}" for o in redone[:50]]
    if result.missing:
        lines += ["", "## Not produced", ""]
        lines += [
            f"- `{o.item.blob_name}`: {o.decision.reason if o.decision else 'not attempted'}" for o in result.missing
        ]
    return "\n".join(lines)
