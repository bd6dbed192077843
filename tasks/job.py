"""Job step: create the job (deterministic id), or find it again on a rerun."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from azure.batch import models as batchmodels
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.azure_errors import error_code
from batchpipe.clients import batch_client
from batchpipe.errors import ConfigurationError
from batchpipe.naming import wire_text
from batchpipe.pools import CREATED_BY_KEY, CREATED_BY_VALUE
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, azure_call


@task(name="create-job", cache_policy=NO_CACHE, **AZURE_RETRIES)
def ensure_job(settings: Settings, job_id: str) -> dict[str, Any]:
    """Create the job on the pool, or reuse it when a rerun finds it (same inputs → same id).

    Args:
        settings: the run's settings (pool id, timeouts, retries).
        job_id: the job id.

    Returns:
        ``{"job_id", "created"}``.

    Raises:
        ConfigurationError: the job exists on another pool, or is finished and cannot take tasks.
        CloudError: Batch refused (quota, ...).
    """
    logger = get_run_logger()
    client = batch_client(settings)
    definition = batchmodels.BatchJobCreateOptions(
        id=job_id,
        pool_info=batchmodels.BatchPoolInfo(pool_id=settings.pool_id),
        # A forgotten job must not run (and bill) forever.
        constraints=batchmodels.BatchJobConstraints(
            max_wall_clock_time=timedelta(seconds=settings.monitor_timeout + settings.pool_ready_timeout)
        ),
        metadata=[batchmodels.BatchMetadataItem(name=CREATED_BY_KEY, value=CREATED_BY_VALUE)],
    )
    with azure_call("Batch", f"creating job {job_id!r}"):
        try:
            client.create_job(definition)
            logger.info("Created job %s on pool %s", job_id, settings.pool_id)
            return {"job_id": job_id, "created": True}
        except ResourceExistsError as error:
            if error_code(error) not in (None, "JobExists"):
                raise  # another 409, e.g. ActiveJobAndScheduleQuotaReached: not about this job
            existing = client.get_job(job_id)
    pool = existing.pool_info.pool_id if existing.pool_info else None
    if pool != settings.pool_id:
        raise ConfigurationError(
            f"job {job_id!r} exists on pool {pool!r}, not {settings.pool_id!r}: set BATCHPIPE_JOB_ID"
        )
    state = wire_text(existing.state)
    if state not in ("active", "completed", ""):
        raise ConfigurationError(
            f"job {job_id!r} already exists and is {state}: wait until it is gone, or set BATCHPIPE_JOB_ID"
        )
    logger.info("Reusing job %s (rerun of the same inputs)", job_id)
    return {"job_id": job_id, "created": False}


@task(name="finish-job-when-done", cache_policy=NO_CACHE, **AZURE_RETRIES)
def terminate_job_when_tasks_complete(settings: Settings, job_id: str) -> None:
    """Let Batch end the job once its last task completes (set only after every task was added: a job
    created with this setting and no tasks yet would end at once).

    Args:
        settings: the run's settings.
        job_id: the job.

    Raises:
        CloudError: Batch refused.
    """
    client = batch_client(settings)
    with azure_call("Batch", f"updating job {job_id!r}"):
        try:
            client.update_job(job_id, batchmodels.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
        except HttpResponseError as error:
            if error_code(error) != "JobCompleted":  # a rerun of a finished job: nothing left to end
                raise
