"""Cleanup: the approval step (UI, API, terminal or flag) and deleting the job and the pool."""

from __future__ import annotations

import threading
from typing import Any, Literal
from uuid import UUID

from azure.core.exceptions import ResourceNotFoundError
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from prefect.logging import get_run_logger
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from batchpipe.clients import batch_client
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, azure_call

ApprovalMode = Literal["ask", "wait", "yes", "no"]


class CleanupApproval(RunInput):
    """The answer to the approval step, as the Prefect UI shows it."""

    delete_job: bool = Field(True, description="Delete the Batch job (its tasks and their logs go with it).")
    delete_pool: bool = Field(True, description="Delete the pool. An idle pool keeps costing money.")
    comment: str = Field("", description="Optional note, kept in the run's log.")

    @classmethod
    def form(cls, description: str, *, delete_job: bool, delete_pool: bool) -> type[CleanupApproval]:
        """This input with other defaults, keeping each field's description for the UI's Resume form.

        ``RunInput.with_initial_data`` rebuilds fields from their types alone, which drops the descriptions.
        """
        defaults = {"delete_job": delete_job, "delete_pool": delete_pool}
        fields: dict[str, Any] = {
            name: (
                cls.model_fields[name].annotation,
                FieldInfo.merge_field_infos(cls.model_fields[name], default=value),
            )
            for name, value in defaults.items()
        }
        model: type[CleanupApproval] = create_model(cls.__name__, __base__=cls, **fields)
        model._description = description
        return model


@task(name="delete-job", cache_policy=NO_CACHE, **AZURE_RETRIES)
def delete_job(settings: Settings, job_id: str) -> bool:
    """Delete the job and wait until it is gone.

    Args:
        settings: the run's settings.
        job_id: the job.

    Returns:
        True if it was deleted, False if it did not exist.

    Raises:
        CloudError: Batch refused.
    """
    client = batch_client(settings)
    with azure_call("Batch", f"deleting job {job_id!r}"):
        try:
            client.begin_delete_job(job_id, polling_interval=1).result()
        except ResourceNotFoundError:
            return False
    get_run_logger().info("Deleted job %s", job_id)
    return True


@task(name="delete-pool", cache_policy=NO_CACHE, **AZURE_RETRIES)
def delete_pool(settings: Settings, pool_id: str) -> bool:
    """Delete the pool (its nodes stop billing) and wait until it is gone.

    Args:
        settings: the run's settings.
        pool_id: the pool.

    Returns:
        True if it was deleted, False if it did not exist.

    Raises:
        CloudError: Batch refused.
    """
    client = batch_client(settings)
    with azure_call("Batch", f"deleting pool {pool_id!r}"):
        try:
            client.begin_delete_pool(pool_id, polling_interval=1).result()
        except ResourceNotFoundError:
            return False
    get_run_logger().info("Deleted pool %s", pool_id)
    return True


def terminal_prompt(question: str, default: bool) -> bool:
    """Ask a yes/no question like the tutorial does (``Delete job? [Y/n]``)."""
    suffix = "[Y/n]" if default else "[y/N]"
    while True:
        answer = input(f"{question} {suffix} ").strip().lower()
        if not answer:
            return default
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False


class ApprovalTimer:
    """Answers a paused run with the configured default when nobody else does in time.

    ``pause_flow_run``'s own timeout leaves the run Failed; resuming it ourselves with the default keeps a
    timeout what it is for the user: a decision, not a failure.
    """

    def __init__(self, flow_run_id: str, timeout: float, default: CleanupApproval) -> None:
        self.fired = False
        self._cancel = threading.Event()
        self._args = (flow_run_id, timeout, default)
        self._thread = threading.Thread(target=self._run, name="approval-timer", daemon=True)

    def __enter__(self) -> ApprovalTimer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cancel.set()
        self._thread.join(5)

    def _run(self) -> None:
        from prefect.flow_runs import resume_flow_run

        flow_run_id, timeout, default = self._args
        if self._cancel.wait(timeout):
            return
        self.fired = True
        try:
            resume_flow_run(UUID(flow_run_id), run_input=default.model_dump())
        except Exception:  # noqa: BLE001 - somebody answered at the same moment: their answer stands
            self.fired = False
