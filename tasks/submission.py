"""Task submission: one Batch task per input, in parallel chunks of 100, never duplicated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from azure.batch import BatchClient
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


def _create(client: BatchClient, job_id: str, tasks: list[batchmodels.BatchTaskCreateOptions]) -> None:
    if not tasks:
        return
    with azure_call("Batch", f"adding {len(tasks)} tasks to job {job_id!r}"):
        try:
            client.create_tasks(job_id, tasks, max_concurrency=SUBMIT_CONCURRENCY)
        except batchmodels.CreateTasksError as error:
            failures = [f"{r.task_id}: {_task_error(r)}" for r in error.failure_tasks]
            failures += [str(e).splitlines()[0] for e in error.errors]
            raise CloudError(
                f"Batch refused {len(failures)} of {len(tasks)} tasks: {'; '.join(failures[:5])}"
            ) from None


def _task_error(result: batchmodels.BatchTaskCreateResult) -> str:
    """``code: first line of the message`` of one refused task."""
    if result.error is None:
        return str(result.status)
    message = result.error.message.value if result.error.message else None
    first = message.splitlines()[0] if message else ""
    return f"{result.error.code}: {first}" if first else str(result.error.code)


@dataclass(frozen=True)
class MapTask:
    """One task of the general flow: a rendered command for one input, and what it needs and produces."""

    task_id: str
    display_name: str
    command_line: str
    resource_files: list[tuple[str, str]]  # (SAS URL, path on the node)
    output_files: list[tuple[str, str, str]]  # (file pattern, blob path, upload condition)
    environment: dict[str, str] = field(default_factory=dict)
    required_slots: int = 1
    max_wall_clock_seconds: float | None = None
    max_retries: int = 1
    container_image: str | None = None
    application_package: tuple[str, str | None] | None = None


def map_task_definition(task_spec: MapTask, container_url: str, sas: str) -> batchmodels.BatchTaskCreateOptions:
    """The Batch task for a :class:`MapTask`; outputs and logs go to the output container (SAS in the URL).

    Args:
        task_spec: the task.
        container_url: the output container's URL without SAS.
        sas: a create+write SAS for it.

    Returns:
        The SDK model to add to the job.
    """
    outputs = [
        batchmodels.OutputFile(
            file_pattern=pattern,
            destination=batchmodels.OutputFileDestination(
                container=batchmodels.OutputFileBlobContainerDestination(
                    container_url=f"{container_url}?{sas}", path=path
                )
            ),
            upload_options=batchmodels.OutputFileUploadConfiguration(upload_condition=condition),
        )
        for pattern, path, condition in task_spec.output_files
    ]
    wall_clock = task_spec.max_wall_clock_seconds
    return batchmodels.BatchTaskCreateOptions(
        id=task_spec.task_id,
        display_name=task_spec.display_name[:1024],
        command_line=task_spec.command_line,
        resource_files=[
            batchmodels.ResourceFile(http_url=url, file_path=path) for url, path in task_spec.resource_files
        ],
        environment_settings=[batchmodels.EnvironmentSetting(name=k, value=v) for k, v in task_spec.environment.items()]
        or None,
        output_files=outputs,
        required_slots=task_spec.required_slots,
        constraints=batchmodels.BatchTaskConstraints(
            max_task_retry_count=task_spec.max_retries,
            max_wall_clock_time=timedelta(seconds=wall_clock) if wall_clock else None,
        ),
        container_settings=(
            batchmodels.BatchTaskContainerSettings(image_name=task_spec.container_image)
            if task_spec.container_image
            else None
        ),
        application_package_references=(
            [
                batchmodels.BatchApplicationPackageReference(
                    application_id=task_spec.application_package[0], version=task_spec.application_package[1]
                )
            ]
            if task_spec.application_package
            else None
        ),
    )


@task(name="add-tasks", cache_policy=NO_CACHE, **AZURE_RETRIES)
def add_tasks(settings: Settings, job_id: str, tasks: list[batchmodels.BatchTaskCreateOptions]) -> dict[str, int]:
    """Add tasks to a job, except those whose id is already there (a retried or resumed step adds nothing twice).

    Args:
        settings: the run's settings.
        job_id: the job.
        tasks: the task definitions (e.g. from :func:`map_task_definition`).

    Returns:
        ``{"submitted", "already_there"}``.

    Raises:
        CloudError: Batch refused some tasks (e.g. the job has completed).
    """
    client = batch_client(settings)
    with azure_call("Batch", f"listing tasks of job {job_id!r}"):
        existing = {t.id for t in client.list_tasks(job_id, select=["id"])}
    missing = [t for t in tasks if t.id not in existing]
    _create(client, job_id, missing)
    get_run_logger().info(
        "Submitted %d tasks to job %s (%d already there)", len(missing), job_id, len(tasks) - len(missing)
    )
    return {"submitted": len(missing), "already_there": len(tasks) - len(missing)}
