"""The pipeline: the tutorial's nine steps as one Prefect flow."""

# No `from __future__ import annotations`: Prefect builds the run form (and pickles served flows) from real types.
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.context import get_run_context
from prefect.flow_runs import pause_flow_run
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from batchpipe.approval_help import approval_instructions, serves_ui
from batchpipe.clients import blob_service_client, uses_entra_id_for_storage
from batchpipe.errors import BatchpipeError, PipelineFailed
from batchpipe.naming import InputFile, file_sha256, job_id_for, output_blob_name, resolve_inputs, task_id_for
from batchpipe.sas import SasSigner, with_token
from batchpipe.services import PROJECT_ROOT
from batchpipe.settings import Settings, load_settings
from tasks.capacity import check_capacity
from tasks.cleanup import ApprovalMode, ApprovalTimer, CleanupApproval, delete_job, delete_pool, terminal_prompt
from tasks.job import ensure_job, terminate_job_when_tasks_complete
from tasks.monitoring import wait_for_tasks
from tasks.pool import ensure_pool, find_image
from tasks.storage import UploadReport, create_containers, delete_containers, download_outputs, upload_files
from tasks.submission import TaskSpec, submit_tasks

# SAS tokens outlive the monitoring timeout by this much (pool start-up, downloads).
SAS_MARGIN_SECONDS = 1800
# How often a paused run checks for an answer (Prefect's default of 10 s makes approval feel stuck).
APPROVAL_POLL_SECONDS = 2


def parse_top_words(text: str) -> list[tuple[str, int]]:
    """Read ``word:<TAB>count`` lines from a node application output file."""
    words = []
    for line in text.splitlines():
        word, sep, count = line.rpartition(":\t")
        if sep and count.strip().isdigit():
            words.append((word, int(count)))
    return words


@dataclass(frozen=True)
class Decision:
    """What happens to the job and the pool, and who decided."""

    delete_job: bool
    delete_pool: bool
    decided_by: str


def _node_app_artifact(build_dir: Path) -> InputFile:
    from node_app.build import build_package

    path = build_package(build_dir)
    return InputFile(path=path, blob_name=path.name, sha256=file_sha256(path), size=path.stat().st_size)


def _ask_in_terminal(flow_run_id: str, deadline: float) -> None:
    """Ask like the tutorial, then answer the paused run (retrying until the pause is registered)."""
    from prefect import get_client
    from prefect.exceptions import NotPausedError
    from prefect.flow_runs import resume_flow_run

    with get_client(sync_client=True) as client:  # ask once the pause (and its log line) is there, not inside it
        while time.monotonic() < deadline:
            state = client.read_flow_run(UUID(flow_run_id)).state
            if state is not None and state.is_paused():
                break
            time.sleep(0.2)  # polling the run's state, bounded by the deadline
    answer = CleanupApproval(
        delete_job=terminal_prompt("Delete job?", True),
        delete_pool=terminal_prompt("Delete pool?", True),
        comment="answered in the terminal",
    )
    while time.monotonic() < deadline:
        try:
            resume_flow_run(UUID(flow_run_id), run_input=answer.model_dump())
            return
        except NotPausedError:
            time.sleep(0.5)  # the flow has not reached its pause yet


def request_approval(mode: ApprovalMode, settings: Settings, job_id: str, pool_id: str) -> Decision:
    """The approval step before deleting the job and the pool.

    ``yes``/``no`` answer without asking; ``wait`` pauses the run for an answer from the Prefect UI, the API or
    ``batchpipe approve``; ``ask`` also asks in the terminal. Without an answer the configured default applies
    after ``approval_timeout`` and the run still completes.
    """
    if mode in ("yes", "no"):
        return Decision(mode == "yes", mode == "yes", f"--approve {mode}")
    logger = get_run_logger()
    default = CleanupApproval(
        delete_job=settings.delete_job_on_approval_timeout,
        delete_pool=settings.delete_pool_on_approval_timeout,
        comment="approval timed out",
    )
    flow_run = get_run_context().flow_run  # type: ignore[union-attr]
    flow_run_id = str(flow_run.id)  # type: ignore[union-attr]
    terminal = sys.stdin is not None and sys.stdin.isatty()
    api_url = PREFECT_API_URL.value()
    logger.info(
        approval_instructions(
            mode=mode,
            terminal=terminal,
            flow_run_name=flow_run.name,  # type: ignore[union-attr]
            flow_run_id=flow_run_id,
            api_url=api_url,
            ui_url=serves_ui(api_url),
            job_id=job_id,
            pool_id=pool_id,
            timeout=settings.approval_timeout,
            default_job=default.delete_job,
            default_pool=default.delete_pool,
        )
    )
    if mode == "ask" and terminal:
        deadline = time.monotonic() + settings.approval_timeout
        threading.Thread(target=_ask_in_terminal, args=(flow_run_id, deadline), daemon=True).start()
    with ApprovalTimer(flow_run_id, settings.approval_timeout, default) as timer:
        answer = pause_flow_run(
            wait_for_input=CleanupApproval.form(
                description=f"Delete job `{job_id}` and pool `{pool_id}`? An idle pool keeps costing money.",
                delete_job=default.delete_job,
                delete_pool=default.delete_pool,
            ),
            timeout=int(settings.approval_timeout) + 300,
            poll_interval=APPROVAL_POLL_SECONDS,
        )
    decided_by = "timeout (configured default)" if timer.fired else f"approval ({answer.comment or 'no comment'})"
    logger.info("Approval: delete job=%s, delete pool=%s, by %s", answer.delete_job, answer.delete_pool, decided_by)
    return Decision(answer.delete_job, answer.delete_pool, decided_by)


def _uploaded_count(future: PrefectFuture[UploadReport]) -> int:
    """Files an upload step actually wrote (0 when Prefect's cache answered for the whole set)."""
    report = future.result()
    return 0 if future.state.name == "Cached" else len(report.uploaded)


def _left_in_place(error: BatchpipeError, made: list[str]) -> BatchpipeError:
    """The same error, also naming what this run created or found and leaves behind for a rerun."""
    return type(error)(f"{error.message}. Left in place for a rerun: {', '.join(made)}")


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# batchpipe run",
        "",
        f"- job: `{summary['job_id']}` ({summary['job']})",
        f"- pool: `{summary['pool_id']}` ({summary['pool']})",
        f"- containers: {summary['containers']}",
        f"- approval: {summary['decided_by']}",
        f"- outputs: {len(summary['outputs'])} verified in `{summary['output_dir']}`",
    ]
    if summary["failed_tasks"]:
        lines.append(f"- failed tasks: {', '.join(summary['failed_tasks'])}")
    return "\n".join(lines)


# Bounded: the default runner is unbounded, and steps already parallelise their own transfers.
@flow(name="batchpipe", task_runner=cast(Any, ThreadPoolTaskRunner(max_workers=4)), log_prints=True)
def top_words_pipeline(
    inputs: list[str] | None = None,
    output_dir: str = "outputs",
    num_words: Annotated[int | None, Field(ge=1, le=100_000)] = None,
    approval: ApprovalMode = "wait",
    keep_containers: bool = False,
    pool_id: str | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """Count the top words of each input file on Azure Batch (or the local Batch service).

    Args:
        inputs: files, directories or globs (default: the bundled samples/).
        output_dir: where the verified outputs go (a subdirectory per job).
        num_words: how many top words per file (default: BATCHPIPE_NUM_WORDS, 3).
        approval: ``wait`` (UI/API/``batchpipe approve``), ``ask`` (also the terminal), ``yes`` or ``no``.
        keep_containers: keep the blob containers after a successful run.
        pool_id: pool to create or reuse (default: BATCHPIPE_POOL_ID).
        job_id: job id (default: derived from the inputs, so a rerun finds the same job).

    Returns:
        A summary: job, pool, outputs with their top words, what was deleted and kept.

    Raises:
        InputError, ConfigurationError: bad input or settings, before anything is created.
        PipelineFailed: tasks failed or outputs are missing (the others are still downloaded).
        CloudError: Azure refused an operation.
    """
    logger = get_run_logger()
    settings = load_settings(num_words=num_words, pool_id=pool_id, job_id=job_id)
    if settings.target == "azure":
        settings.require_azure()
    files = resolve_inputs(inputs or [str(PROJECT_ROOT / "samples")])
    job = settings.job_id or job_id_for(files, settings.num_words, settings.pool_id)
    out_dir = Path(output_dir).expanduser().resolve() / job
    app = _node_app_artifact(Path(".batchpipe/build").resolve())
    logger.info("Job %s: %d input files, top %d words, node app %s", job, len(files), settings.num_words, app.blob_name)

    # Pre-flight: the image must exist and the account's quotas must allow the pool before anything is created.
    image = find_image(settings)
    check_capacity(settings, job)

    # 1-2. Containers and uploads (cached by content).
    containers = [settings.application_container, settings.input_container, settings.output_container]
    create_containers(settings, containers)
    uploads = [
        upload_files.submit(settings, settings.application_container, [app]),
        upload_files.submit(settings, settings.input_container, files),
    ]
    uploaded = sum(_uploaded_count(future) for future in uploads)

    blob_client = blob_service_client(settings)
    account_key = None
    if not uses_entra_id_for_storage(settings):
        account_key = blob_client.credential.account_key
    lifetime = timedelta(seconds=settings.monitor_timeout + SAS_MARGIN_SECONDS)
    signer = SasSigner.for_client(blob_client, lifetime, account_key)
    base = blob_client.url.rstrip("/")
    app_url = with_token(
        f"{base}/{settings.application_container}/{app.blob_name}",
        signer.blob_read_token(settings.application_container, app.blob_name),
    )
    specs = [
        TaskSpec(
            task_id=task_id_for(item),
            input_blob=item.blob_name,
            input_url=with_token(
                f"{base}/{settings.input_container}/{item.blob_name}",
                signer.blob_read_token(settings.input_container, item.blob_name),
            ),
            output_blob=output_blob_name(item.blob_name),
        )
        for item in files
    ]

    # 3-5. Pool, job, tasks. A refusal from here on leaves what exists so far, and the error says what.
    made = [f"containers {', '.join(containers)}"]
    try:
        pool = ensure_pool(settings, image, app.blob_name, app_url)
        made.insert(0, f"pool {settings.pool_id}")
        job_info = ensure_job(settings, job)
        made.insert(0, f"job {job}")
        submit_tasks(
            settings,
            job,
            specs,
            app.blob_name,
            str(blob_client.account_name),
            base,
            signer.container_write_token(settings.output_container),
            f"{base}/{settings.output_container}",
        )
        terminate_job_when_tasks_complete(settings, job)

        # 6-7. Monitor, then download every output that exists, verified.
        result = wait_for_tasks(settings, job, len(specs))
    except BatchpipeError as error:
        raise _left_in_place(error, made) from None
    failed_ids = {f.task_id for f in result.failed}
    wanted = [s.output_blob for s in specs if s.task_id not in failed_ids]
    report = download_outputs(settings, settings.output_container, wanted, out_dir)
    outputs = []
    for item in report.downloaded:
        top = parse_top_words(item.path.read_text("utf-8"))
        outputs.append({"file": item.blob_name, "path": str(item.path), "top_words": top})
    create_table_artifact(
        [{"file": o["file"], "top words": ", ".join(f"{w} ({c})" for w, c in o["top_words"])} for o in outputs],
        key="batchpipe-results",
        description=f"Top {settings.num_words} words per file, job {job}",
    )

    # 8. Containers go only when every output is verified on disk.
    complete = not result.failed and not report.missing
    if complete and not keep_containers:
        delete_containers(settings, containers)
        containers_state = "deleted"
    else:
        containers_state = "kept" + ("" if complete else " (outputs incomplete)")

    # 9. Approval, then the job and the pool.
    decision = request_approval(approval, settings, job, settings.pool_id)
    job_deleted = delete_job(settings, job) if decision.delete_job else False
    pool_deleted = delete_pool(settings, settings.pool_id) if decision.delete_pool else False

    summary: dict[str, Any] = {
        "job_id": job,
        "uploaded": uploaded,
        "job": "deleted" if job_deleted else ("kept" if not decision.delete_job else "already gone"),
        "job_created": job_info["created"],
        "pool_id": settings.pool_id,
        "pool": "deleted" if pool_deleted else ("kept" if not decision.delete_pool else "already gone"),
        "pool_created": pool["created"],
        "containers": containers_state,
        "decided_by": decision.decided_by,
        "output_dir": str(out_dir),
        "outputs": outputs,
        "failed_tasks": sorted(failed_ids),
        "missing_outputs": report.missing,
    }
    create_markdown_artifact(_summary_markdown(summary), key="batchpipe-summary", description="What this run did")
    if not complete:
        problems = [f"{len(failed_ids)} task(s) failed: {', '.join(sorted(failed_ids)[:5])}"] if failed_ids else []
        problems += [f"{len(report.missing)} output(s) missing"] if report.missing else []
        raise PipelineFailed(
            f"{'; '.join(problems)}; {len(outputs)} outputs verified in {out_dir} "
            "(see the failed-tasks artifact for stderr)"
        )
    return summary
