"""Job operations: create, get, list, update/replace, task counts, terminate, disable/enable, delete."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.handlers.common import (
    change_response,
    changed_response,
    created_response,
    deleted_response,
    entity_headers,
    get_response,
    json_response,
    listed_response,
    with_stats,
)
from batch_emulator.models import jobs as model
from batch_emulator.models.account import Account
from batch_emulator.models.job_tasks import NodeRun, status_entries
from batch_emulator.models.jobs import Job
from batch_emulator.models.validation import require_object
from batch_emulator.render import job_stats, job_wire, metadata, preparation_status_wire, seg
from batch_emulator.routing import Route
from batch_emulator.wire_versions import adapt


def _location(ctx: RequestContext, job: Job) -> str:
    return f"{ctx.base_url}/jobs/{seg(job.id)}"


def job_wire_of(ctx: RequestContext, job: Job) -> dict[str, Any]:
    """A job's wire JSON, with its ``stats`` when ``$expand=stats`` asks for them."""
    return with_stats(ctx, job_wire(job, ctx.base_url), lambda: job_stats(job, ctx.base_url, ctx.now))


def _find(ctx: RequestContext, account: Account) -> Job:
    return model.get_job(account, ctx.params["jobId"])


def create_job(ctx: RequestContext) -> Response:
    """``POST /jobs`` → 201."""
    body = ctx.json()
    return created_response(ctx, lambda account: model.create_job(account, body, ctx.now), partial(_location, ctx))


def get_job(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}``."""
    return get_response(ctx, partial(_find, ctx), entity_set="jobs", render=partial(job_wire_of, ctx))


def list_jobs(ctx: RequestContext) -> Response:
    """``GET /jobs``."""
    return listed_response(
        ctx,
        lambda account: list(account.jobs.values()),
        entity_set="jobs",
        render=partial(job_wire_of, ctx),
        seq=lambda job: job.seq,
    )


def task_counts(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/taskcounts``."""
    account = ctx.service.account
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        body = {"odata.metadata": metadata(ctx.base_url, "taskcountsresult", element=True)}
        body.update(adapt("taskcountsresult", model.task_counts(job), ctx.api_version))
        return json_response(body, headers=entity_headers(job.last_modified))


def _change(ctx: RequestContext, apply: Callable[[Account, Job], Job], status: int) -> Response:
    return change_response(ctx, partial(_find, ctx), apply, status=status, location=partial(_location, ctx))


def _update(ctx: RequestContext, *, replace: bool) -> Response:
    body = ctx.json()
    return _change(ctx, lambda account, job: model.update_job(account, job.id, body, ctx.now, replace=replace), 200)


def patch_job(ctx: RequestContext) -> Response:
    """``PATCH /jobs/{jobId}`` → 200 (e.g. set ``onAllTasksComplete`` after adding tasks)."""
    return _update(ctx, replace=False)


def replace_job(ctx: RequestContext) -> Response:
    """``PUT /jobs/{jobId}`` → 200."""
    return _update(ctx, replace=True)


def terminate_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/terminate`` → 202 (v15 polls while the job is ``terminating``)."""
    body = require_object(ctx.json_or_empty())
    reason = body.get("terminateReason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidPropertyValue("terminateReason", reason, "The value must be a string.")
    return _change(ctx, lambda account, job: model.terminate_job(account, job.id, reason, ctx.now), 202)


def disable_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/disable`` → 202."""
    body = ctx.json()
    disable = partial(model.disable_job, job_id=ctx.params["jobId"], body=body, now=ctx.now)
    return changed_response(ctx, disable, status=202, location=partial(_location, ctx))


def enable_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/enable`` → 202."""
    enable = partial(model.enable_job, job_id=ctx.params["jobId"], now=ctx.now)
    return changed_response(ctx, enable, status=202, location=partial(_location, ctx))


def delete_job(ctx: RequestContext) -> Response:
    """``DELETE /jobs/{jobId}`` → 202 (v15 polls until 404)."""
    return deleted_response(ctx, partial(_find, ctx), lambda account, job: model.delete_job(account, job.id, ctx.now))


def preparation_and_release_status(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/jobpreparationandreleasetaskstatus``: one entry per node that ran the preparation task."""

    def entries(account: Account) -> list[tuple[Job, NodeRun, NodeRun | None]]:
        job = model.get_job(account, ctx.params["jobId"])
        return [(job, preparation, release) for preparation, release in status_entries(job)]

    return listed_response(
        ctx,
        entries,
        entity_set="jobpreparationandreleasetaskstatuslist",
        render=lambda entry: preparation_status_wire(*entry, ctx.base_url),
    )


ROUTES = [
    Route("POST", "/jobs", create_job),
    Route("GET", "/jobs", list_jobs),
    Route("GET", "/jobs/{jobId}", get_job),
    Route("PATCH", "/jobs/{jobId}", patch_job),
    Route("PUT", "/jobs/{jobId}", replace_job),
    Route("DELETE", "/jobs/{jobId}", delete_job),
    Route("GET", "/jobs/{jobId}/taskcounts", task_counts),
    Route("POST", "/jobs/{jobId}/terminate", terminate_job),
    Route("POST", "/jobs/{jobId}/disable", disable_job),
    Route("POST", "/jobs/{jobId}/enable", enable_job),
    Route("GET", "/jobs/{jobId}/jobpreparationandreleasetaskstatus", preparation_and_release_status),
]
