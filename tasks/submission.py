"""Task submission: one Batch task per input file, in parallel chunks of 100, never duplicated."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import timedelta

from azure.batch import models as batchmodels
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.clients import batch_client
from batchpipe.errors import CloudError
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, azure_call

#: The node application reads the output container's SAS from this variable, so it is never on a command line.
OUTPUT_SAS_VARIABLE = "BATCHPIPE_OUTPUT_SAS"
# Parallel add-collection requests; the SDK chunks by 100 (the service's limit per request).
SUBMIT_CONCURRENCY = 8
#: Where task logs are uploaded in the output container.
LOG_PREFIX = "logs"


@dataclass(frozen=True)
class TaskSpec:
    """What one Batch task does: count the top words of one input blob."""

    task_id: str
    input_blob: str
    input_url: str  # read-only SAS URL
    output_blob: str


def task_command(
    artifact_name: str, spec: TaskSpec, num_words: int, storage_account: str, output_container: str, blob_endpoint: str
) -> str:
    """The task's command line. It carries no secret: the SAS travels in an environment setting."""
    arguments = [
        "python3",
        f"$AZ_BATCH_NODE_SHARED_DIR/{artifact_name}",
        "--filepath",
        spec.input_blob,
        "--numwords",
        str(num_words),
        "--storageaccount",
        storage_account,
        "--storagecontainer",
        output_container,
        "--blob-endpoint",
        blob_endpoint,
        "--sas-env",
        OUTPUT_SAS_VARIABLE,
    ]
    # Batch runs command lines without a shell; the shell expands $AZ_BATCH_NODE_SHARED_DIR.
    script = " ".join(a if a.startswith("$AZ_BATCH") else shlex.quote(a) for a in arguments)
    script = script.replace("$AZ_BATCH_NODE_SHARED_DIR/", '"$AZ_BATCH_NODE_SHARED_DIR"/')
    return f"/bin/sh -c {shlex.quote(script)}"


def log_uploads(task_id: str, container_url: str, sas: str) -> list[batchmodels.OutputFile]:
    """Batch uploads the task's stdout/stderr to ``logs/<task id>/`` when it completes, so the logs outlive the node."""
    return [
        batchmodels.OutputFile(
            file_pattern=f"../{name}",  # patterns are relative to the working directory; logs sit one level up
            destination=batchmodels.OutputFileDestination(
                container=batchmodels.OutputFileBlobContainerDestination(
                    container_url=f"{container_url}?{sas}", path=f"{LOG_PREFIX}/{task_id}/{name}"
                )
            ),
            upload_options=batchmodels.OutputFileUploadConfiguration(upload_condition="taskcompletion"),
        )
        for name in ("stdout.txt", "stderr.txt")
    ]


@task(name="submit-tasks", cache_policy=NO_CACHE, **AZURE_RETRIES)
def submit_tasks(
    settings: Settings,
    job_id: str,
    specs: list[TaskSpec],
    artifact_name: str,
    storage_account: str,
    blob_endpoint: str,
    output_sas: str,
    output_container_url: str,
) -> dict[str, int]:
    """Add the tasks that are not in the job yet (a rerun adds nothing twice).

    Args:
        settings: the run's settings.
        job_id: the job.
        specs: one spec per input file.
        artifact_name: the node application's file name (staged by the start task).
        storage_account: Storage account name for the node application.
        blob_endpoint: the Blob endpoint the nodes upload to.
        output_sas: write-only SAS token for the output container.
        output_container_url: the output container's URL (without SAS), where task logs are kept too.

    Returns:
        ``{"submitted", "already_there"}``.

    Raises:
        CloudError: Batch refused some tasks.
    """
    logger = get_run_logger()
    client = batch_client(settings)
    with azure_call("Batch", f"listing tasks of job {job_id!r}"):
        existing = {t.id for t in client.list_tasks(job_id, select=["id"])}
    missing = [s for s in specs if s.task_id not in existing]
    tasks = [
        batchmodels.BatchTaskCreateOptions(
            id=spec.task_id,
            display_name=f"top {settings.num_words} words of {spec.input_blob}",
            command_line=task_command(
                artifact_name, spec, settings.num_words, storage_account, settings.output_container, blob_endpoint
            ),
            resource_files=[batchmodels.ResourceFile(http_url=spec.input_url, file_path=spec.input_blob)],
            environment_settings=[batchmodels.EnvironmentSetting(name=OUTPUT_SAS_VARIABLE, value=output_sas)],
            output_files=log_uploads(spec.task_id, output_container_url, output_sas),
            constraints=batchmodels.BatchTaskConstraints(
                max_task_retry_count=settings.max_task_retries,
                max_wall_clock_time=timedelta(seconds=settings.monitor_timeout),
            ),
        )
        for spec in missing
    ]
    if tasks:
        with azure_call("Batch", f"adding {len(tasks)} tasks to job {job_id!r}"):
            try:
                client.create_tasks(job_id, tasks, max_concurrency=SUBMIT_CONCURRENCY)
            except batchmodels.CreateTasksError as error:
                failures = [f"{r.task_id}: {r.error.code if r.error else r.status}" for r in error.failure_tasks]
                failures += [str(e).splitlines()[0] for e in error.errors]
                raise CloudError(
                    f"Batch refused {len(failures)} of {len(tasks)} tasks: {'; '.join(failures[:5])}"
                ) from None
    logger.info("Submitted %d tasks to job %s (%d already there)", len(tasks), job_id, len(existing))
    return {"submitted": len(tasks), "already_there": len(specs) - len(missing)}
