"""The pipeline: the tutorial's nine steps as one Prefect flow, a thin specialisation of :mod:`flows.batch_map`."""

# No `from __future__ import annotations`: Prefect builds the run form (and pickles served flows) from real types.
import shlex
from pathlib import Path
from typing import Annotated, Any, cast

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from batchpipe.errors import ConfigurationError, PipelineFailed
from batchpipe.naming import InputFile, file_sha256, job_id_for, resolve_inputs
from batchpipe.services import PROJECT_ROOT
from batchpipe.settings import load_settings
from batchpipe.workload import NodeApp
from flows import batch_map
from flows.approval import Decision, request_approval
from flows.batch_map import MapSpec, missing_line, reconcile_counts, refused, run_map
from tasks.cleanup import ApprovalMode
from tasks.submission import OUTPUT_SAS_VARIABLE

__all__ = ["SAS_MARGIN_SECONDS", "Decision", "parse_top_words", "request_approval", "top_words_pipeline"]

#: The tutorial's task, as a command template: the node application writes ``<stem>_OUTPUT<ext>``.
TOP_WORDS_COMMAND = "cd {output_dir} && python3 {app} --filepath ../{input} --numwords {numwords} --no-upload"
TOP_WORDS_OUTPUT = "{input_stem}_OUTPUT{input_ext}"
# SAS tokens outlive the monitoring timeout by this much (pool start-up, downloads); read at each run.
SAS_MARGIN_SECONDS = batch_map.SAS_MARGIN_SECONDS


def parse_top_words(text: str) -> list[tuple[str, int]]:
    """Read ``word:<TAB>count`` lines from a node application output file."""
    words = []
    for line in text.splitlines():
        word, sep, count = line.rpartition(":\t")
        if sep and count.strip().isdigit():
            words.append((word, int(count)))
    return words


def _node_app_artifact(build_dir: Path) -> InputFile:
    from node_app.build import build_package

    path = build_package(build_dir)
    return InputFile(path=path, blob_name=path.name, sha256=file_sha256(path), size=path.stat().st_size)


def _summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        "# batchpipe run",
        "",
        f"- job: `{summary['job_id']}` ({summary['job']})",
        f"- pool: `{summary['pool_id']}` ({summary['pool']})",
        f"- containers: {summary['containers']}",
        f"- approval: {summary['decided_by']}",
        f"- outputs: {len(summary['outputs'])} verified in `{summary['output_dir']}`",
        f"- inputs: {summary['reconcile']}",
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
    artifact = _node_app_artifact(Path(".batchpipe/build").resolve())
    logger.info(
        "Job %s: %d input files, top %d words, node app %s", job, len(files), settings.num_words, artifact.blob_name
    )
    spec = MapSpec(
        command=TOP_WORDS_COMMAND,
        output_patterns=[TOP_WORDS_OUTPUT],
        app=NodeApp(artifact, f'"$AZ_BATCH_NODE_SHARED_DIR"/{shlex.quote(artifact.blob_name)}', None),
        parameters={"numwords": str(settings.num_words)},
        task_prefix="topn",
        output_sas_variable=OUTPUT_SAS_VARIABLE,  # as the tutorial: the node application could upload itself
        describe=lambda key: f"top {settings.num_words} words of {key}",
    )
    manifest = out_dir.with_name(f"{job}.manifest.json")  # beside the job directory, which keeps only the outputs
    try:
        result = run_map(
            settings,
            files,
            spec,
            job,
            out_dir,
            approval,
            keep_containers,
            request_approval,
            manifest,
            sas_margin_seconds=SAS_MARGIN_SECONDS,
        )
    except ConfigurationError as error:
        return refused(error)

    outputs = []
    for outcome in result.outcomes:
        for item in outcome.outputs:
            path = out_dir / item["path"]
            outputs.append(
                {"file": path.name, "path": str(path), "top_words": parse_top_words(path.read_text("utf-8"))}
            )
    create_table_artifact(
        [{"file": o["file"], "top words": ", ".join(f"{w} ({c})" for w, c in o["top_words"])} for o in outputs],
        key="batchpipe-results",
        description=f"Top {settings.num_words} words per file, job {result.job_id}",
    )
    missing = {o.item.blob_name: o.decision.reason if o.decision else "not attempted" for o in result.missing}
    summary: dict[str, Any] = result.summary() | {
        "outputs": outputs,
        "missing_outputs": missing,
        "reconcile": reconcile_counts(result),
    }
    create_markdown_artifact(_summary_markdown(summary), key="batchpipe-summary", description="What this run did")
    if missing:
        # The tutorial's line: failed tasks, then outputs missing for other reasons; the details are in the log.
        get_run_logger().error(missing_line(result))
        failed = sorted(
            o.decision.task.task_id
            for o in result.missing
            if o.decision and o.decision.task and o.decision.task.result == "failure"
        )
        problems = [f"{len(failed)} task(s) failed: {', '.join(failed[:5])}"] if failed else []
        if len(missing) > len(failed):
            problems.append(f"{len(missing) - len(failed)} output(s) missing")
        raise PipelineFailed(
            f"{'; '.join(problems)}; {len(outputs)} outputs verified in {out_dir} "
            "(see the failed-tasks artifact for stderr)"
        )
    return summary
