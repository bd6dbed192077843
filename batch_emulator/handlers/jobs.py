"""Job operations: create, get, list, update/replace, task counts, terminate, disable/enable, delete."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.handlers.common import (
    check_conditions,
    empty_response,
    entity_headers,
    entity_response,
    json_response,
    list_response,
    with_stats,
)
from batch_emulator.models import jobs as model
from batch_emulator.models.job_tasks import status_entries
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


def create_job(ctx: RequestContext) -> Response:
    """``POST /jobs`` → 201."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        job = model.create_job(account, body, ctx.now)
        headers = entity_headers(job.last_modified, _location(ctx, job))
    ctx.service.persist()
    return empty_response(201, headers)


def get_job(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}``."""
    account = ctx.service.account
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        wire = job_wire_of(ctx, job)
        return entity_response(ctx, entity_set="jobs", wire=wire, last_modified=job.last_modified)


def list_jobs(ctx: RequestContext) -> Response:
    """``GET /jobs``."""
    account = ctx.service.account
    with account.lock:
        return list_response(
            ctx,
            list(account.jobs.values()),
            entity_set="jobs",
            render=lambda job: job_wire_of(ctx, job),
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


def _update(ctx: RequestContext, *, replace: bool) -> Response:
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        check_conditions(ctx, job.last_modified)
        job = model.update_job(account, ctx.params["jobId"], body, ctx.now, replace=replace)
        headers = entity_headers(job.last_modified, _location(ctx, job))
    ctx.service.persist()
    return empty_response(200, headers)


def patch_job(ctx: RequestContext) -> Response:
    """``PATCH /jobs/{jobId}`` → 200 (e.g. set ``onAllTasksComplete`` after adding tasks)."""
    return _update(ctx, replace=False)


def replace_job(ctx: RequestContext) -> Response:
    """``PUT /jobs/{jobId}`` → 200."""
    return _update(ctx, replace=True)


def terminate_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/terminate`` → 202 (v15 polls while the job is ``terminating``)."""
    account = ctx.service.account
    body = require_object(ctx.json_or_empty())
    reason = body.get("terminateReason")
    if reason is not None and not isinstance(reason, str):
        raise InvalidPropertyValue("terminateReason", reason, "The value must be a string.")
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        check_conditions(ctx, job.last_modified)
        job = model.terminate_job(account, ctx.params["jobId"], reason, ctx.now)
        headers = entity_headers(job.last_modified, _location(ctx, job))
    ctx.service.persist()
    return empty_response(202, headers)


def disable_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/disable`` → 202."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        job = model.disable_job(account, ctx.params["jobId"], body, ctx.now)
        headers = entity_headers(job.last_modified, _location(ctx, job))
    ctx.service.persist()
    return empty_response(202, headers)


def enable_job(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/enable`` → 202."""
    account = ctx.service.account
    with account.lock:
        job = model.enable_job(account, ctx.params["jobId"], ctx.now)
        headers = entity_headers(job.last_modified, _location(ctx, job))
    ctx.service.persist()
    return empty_response(202, headers)


def delete_job(ctx: RequestContext) -> Response:
    """``DELETE /jobs/{jobId}`` → 202 (v15 polls until 404)."""
    account = ctx.service.account
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        check_conditions(ctx, job.last_modified)
        model.delete_job(account, ctx.params["jobId"], ctx.now)
    ctx.service.persist()
    return empty_response(202)


def preparation_and_release_status(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/jobpreparationandreleasetaskstatus``: one entry per node that ran the preparation task."""
    account = ctx.service.account
    with account.lock:
        job = model.get_job(account, ctx.params["jobId"])
        entries = list(enumerate(status_entries(job), start=1))
        return list_response(
            ctx,
            entries,
            entity_set="jobpreparationandreleasetaskstatuslist",
            render=lambda entry: preparation_status_wire(job, entry[1][0], entry[1][1], ctx.base_url),
            seq=lambda entry: entry[0],
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
