"""Observation steps for reconcile: which of the run's jobs exist, which tasks they hold, which outputs are stored.

Each step only reads; :mod:`batchpipe.reconcile` decides what to do with what they saw. The last step,
:func:`verify_outputs`, gives the run's verdict on its outputs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from prefect import State, task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.states import Failed

from batchpipe.clients import batch_client, blob_service_client
from batchpipe.naming import wire_text
from batchpipe.reconcile import OPEN_JOB_STATES, TaskSeen
from batchpipe.redact import redact
from batchpipe.settings import Settings
from batchpipe.workload import TaskIdIndex, job_id_for_generation, output_list_blob, output_prefix, parse_output_list
from tasks._common import AZURE_RETRIES, azure_call
from tasks.storage import UPLOAD_CONCURRENCY

# Generations probed past the last job found (a deleted job in the middle of a run's history).
MISSING_GENERATIONS_TOLERATED = 2


@task(name="find-jobs", cache_policy=NO_CACHE, **AZURE_RETRIES)
def find_run_jobs(settings: Settings, run_id: str) -> dict[int, str]:
    """Find the run's jobs: ``<run id>``, ``<run id>-2``, ... (one GET each, until two in a row are missing).

    Args:
        settings: the run's settings.
        run_id: the run id.

    Returns:
        generation → job state (``active``, ``completed``, ...) for the jobs that exist.

    Raises:
        CloudError: Batch refused.
    """
    client = batch_client(settings)
    found: dict[int, str] = {}
    generation, missing = 1, 0
    while missing < MISSING_GENERATIONS_TOLERATED:
        job_id = job_id_for_generation(run_id, generation)
        with azure_call("Batch", f"reading job {job_id!r}"):
            try:
                found[generation] = wire_text(client.get_job(job_id, select=["id", "state"]).state)
                missing = 0
            except ResourceNotFoundError:
                missing += 1
        generation += 1
    return found


def _seen(item: Any, job_id: str, job_open: bool, attempt: int) -> TaskSeen:
    info = item.execution_info
    failure = info.failure_info if info else None
    return TaskSeen(
        task_id=item.id,
        job_id=job_id,
        attempt=attempt,
        state=wire_text(item.state),
        job_open=job_open,
        result=wire_text(info.result) or None if info else None,
        exit_code=info.exit_code if info else None,
        # A non-zero exit code says it all; other failures (a resource file, an upload) need their message.
        failure=redact(" ".join(f"{failure.code}: {failure.message}".split()))
        if failure and failure.code != "FailureExitCode"
        else "",
        start_time=info.start_time if info else None,
        end_time=info.end_time if info else None,
    )


@task(name="find-tasks", cache_policy=NO_CACHE, **AZURE_RETRIES)
def find_input_tasks(
    settings: Settings, run_id: str, jobs: dict[int, str], task_prefix: str, keys: list[str]
) -> dict[str, list[TaskSeen]]:
    """List the tasks of the run's jobs (one paged listing per job) and map them back to their inputs.

    Args:
        settings: the run's settings.
        run_id: the run id.
        jobs: generation → state, from :func:`find_run_jobs`.
        task_prefix: the prefix of the run's task ids.
        keys: the input keys.

    Returns:
        input key → its tasks in every job (tasks that are not the run's are ignored).

    Raises:
        CloudError: Batch refused.
    """
    client = batch_client(settings)
    index = TaskIdIndex(task_prefix, keys)
    seen: dict[str, list[TaskSeen]] = {}
    for generation, state in sorted(jobs.items()):
        if state == "deleting":
            continue
        job_id = job_id_for_generation(run_id, generation)
        with azure_call("Batch", f"listing tasks of job {job_id!r}"):
            try:
                items = list(client.list_tasks(job_id, select=["id", "state", "executionInfo"]))
            except ResourceNotFoundError:
                continue
        for item in items:
            parsed = index.parse(item.id)
            if parsed is not None:
                key, attempt = parsed
                seen.setdefault(key, []).append(_seen(item, job_id, state in OPEN_JOB_STATES, attempt))
    return seen


@dataclass(frozen=True)
class StoredOutputs:
    """An input's outputs that are all in the output container: blob name → size."""

    key: str
    blobs: dict[str, int]


@task(name="find-outputs", cache_policy=NO_CACHE, **AZURE_RETRIES)
def find_stored_outputs(settings: Settings, container: str, run_id: str, keys: list[str]) -> dict[str, StoredOutputs]:
    """Which inputs have every output in the output container: the task's output list is there, and every file it
    lists is there with its size (one listing of the run's blobs, then one read per output list).

    Args:
        settings: the run's settings.
        container: the output container.
        run_id: the run id (the blob prefix of its outputs).
        keys: the input keys to look for.

    Returns:
        input key → its stored outputs, for the inputs whose outputs are complete.

    Raises:
        CloudError: Storage refused.
    """
    container_client = blob_service_client(settings).get_container_client(container)
    with azure_call("Storage", f"listing outputs of {run_id} in {container!r}"):
        try:
            present = {b.name: b.size for b in container_client.list_blobs(name_starts_with=f"{run_id}/")}
        except ResourceNotFoundError:
            return {}
    candidates = [k for k in keys if output_list_blob(run_id, k) in present]

    def read(key: str) -> StoredOutputs | None:
        with azure_call("Storage", f"reading the output list of {key!r}"):
            try:
                text = (
                    container_client.download_blob(output_list_blob(run_id, key)).readall().decode("utf-8", "replace")
                )
            except ResourceNotFoundError:
                return None
        listed = parse_output_list(text)
        if not listed or any(".." in PurePosixPath(p).parts or p.startswith("/") for p in listed):
            return None
        blobs = {f"{output_prefix(run_id, key)}/{path}": size for path, size in listed.items()}
        if any(present.get(name) != size for name, size in blobs.items()):
            return None  # a listed output was lost or is incomplete
        return StoredOutputs(key, blobs)

    with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
        results = [r for r in pool.map(read, candidates) if r is not None]
    get_run_logger().info("Outputs in storage: %d of %d inputs complete", len(results), len(keys))
    return {r.key: r for r in results}


@task(name="verify-outputs", cache_policy=NO_CACHE)
def verify_outputs(verified: int, missing_line: str) -> int | State[Any]:
    """The run's verdict on its outputs, as a step of its own: Failed (red in the UI, with the one line naming the
    inputs not produced and why) when some are missing, Completed when every output is verified.

    Args:
        verified: how many inputs have every output verified on disk.
        missing_line: the one line naming the inputs not produced and why; empty when none is missing.

    Returns:
        ``verified`` when nothing is missing, else a Failed state carrying ``missing_line`` as its message.
    """
    if missing_line:
        return Failed(message=missing_line)
    get_run_logger().info("Outputs verified: %d inputs", verified)
    return verified
