"""Task operations: create, add collection, list, get, replace, terminate, reactivate, delete."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import BatchError, InvalidPropertyValue, MissingRequiredProperty
from batch_emulator.handlers.common import (
    change_response,
    check_conditions,
    created_response,
    empty_response,
    get_response,
    json_response,
    listed_response,
    with_stats,
)
from batch_emulator.models import tasks as model
from batch_emulator.models.account import Account
from batch_emulator.models.jobs import Job, get_job
from batch_emulator.models.tasks import Task
from batch_emulator.models.validation import require_object
from batch_emulator.render import metadata, seg, subtask_wire, task_field, task_stats, task_wire
from batch_emulator.routing import Route
from batch_emulator.timefmt import etag_for, iso

MAX_TASKS_PER_COLLECTION = 100


def _location(ctx: RequestContext, task: Task) -> str:
    return f"{ctx.base_url}/jobs/{seg(task.job.id)}/tasks/{seg(task.id)}"


def _find(ctx: RequestContext, account: Account) -> Task:
    return model.get_task(get_job(account, ctx.params["jobId"]), ctx.params["taskId"])


def create_task(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/tasks`` → 201."""
    body = ctx.json()

    def create(account: Account) -> Task:
        return model.add_task(account, get_job(account, ctx.params["jobId"]), body, ctx.now)

    return created_response(ctx, create, partial(_location, ctx))


def add_task_collection(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/addtaskcollection`` → 200 with a result per task."""
    account = ctx.service.account
    body = require_object(ctx.json())
    values = body.get("value")
    if values is None:
        raise MissingRequiredProperty("value")
    if not isinstance(values, list):
        raise InvalidPropertyValue("value", "…", "The value must be an array of tasks.")
    if len(values) > MAX_TASKS_PER_COLLECTION:
        raise InvalidPropertyValue(
            "value", len(values), f"A task collection can hold at most {MAX_TASKS_PER_COLLECTION} tasks."
        )
    with account.lock:
        job = get_job(account, ctx.params["jobId"])
        outcomes = model.add_task_collection(account, job, values, ctx.now)
        results = [_result(ctx, body, outcome) for body, outcome in zip(values, outcomes, strict=True)]
    ctx.service.persist()
    return json_response({"odata.metadata": metadata(ctx.base_url, "taskaddresult", element=False), "value": results})


def _result(ctx: RequestContext, body: Any, outcome: Task | BatchError) -> dict[str, Any]:
    if isinstance(outcome, Task):
        return {
            "status": "success",
            "taskId": outcome.id,
            "eTag": etag_for(outcome.last_modified),
            "lastModified": iso(outcome.last_modified),
            "location": _location(ctx, outcome),
        }
    error = outcome.to_body(ctx.base_url, ctx.request_id, _now(ctx))
    error.pop("odata.metadata", None)
    task_id = body.get("id") if isinstance(body, dict) else None
    return {"status": "clienterror", "taskId": task_id if isinstance(task_id, str) else "", "error": error}


def _now(ctx: RequestContext) -> Any:
    from batch_emulator.timefmt import from_ts

    return from_ts(ctx.now)


def _task_wire(ctx: RequestContext, task: Task) -> dict[str, Any]:
    return with_stats(ctx, task_wire(task, ctx.base_url), lambda: task_stats(task, ctx.base_url, ctx.now))


def list_tasks(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/tasks`` with ``$filter`` (e.g. ``state eq 'completed'``), ``$select``, paging."""
    return listed_response(
        ctx,
        lambda account: list(get_job(account, ctx.params["jobId"]).tasks.values()),
        entity_set="tasks",
        render=partial(_task_wire, ctx),
        seq=lambda task: task.seq,
        resolver=lambda task: lambda path: task_field(task, path),
    )


def get_task(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/tasks/{taskId}``."""
    return get_response(
        ctx, partial(_find, ctx), entity_set="tasks", render=partial(_task_wire, ctx), location=partial(_location, ctx)
    )


def _change(ctx: RequestContext, apply: Callable[[Account, Job, str], Task], status: int) -> Response:
    return change_response(
        ctx,
        partial(_find, ctx),
        lambda account, task: apply(account, task.job, ctx.params["taskId"]),
        status=status,
        location=partial(_location, ctx),
    )


def replace_task(ctx: RequestContext) -> Response:
    """``PUT /jobs/{jobId}/tasks/{taskId}`` (constraints) → 200."""
    body = ctx.json()
    return _change(ctx, lambda account, job, task_id: model.replace_task(account, job, task_id, body, ctx.now), 200)


def terminate_task(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/tasks/{taskId}/terminate`` → 204."""
    return _change(ctx, lambda account, job, task_id: model.terminate_task(account, job, task_id, ctx.now), 204)


def reactivate_task(ctx: RequestContext) -> Response:
    """``POST /jobs/{jobId}/tasks/{taskId}/reactivate`` → 204."""
    return _change(ctx, lambda account, job, task_id: model.reactivate_task(account, job, task_id, ctx.now), 204)


def delete_task(ctx: RequestContext) -> Response:
    """``DELETE /jobs/{jobId}/tasks/{taskId}`` → 200."""
    account = ctx.service.account
    with account.lock:
        job = get_job(account, ctx.params["jobId"])
        check_conditions(ctx, model.get_task(job, ctx.params["taskId"]).last_modified)
        task = model.delete_task(account, job, ctx.params["taskId"], ctx.now)
        place = (task.pool_id, task.node_id)
    if place[0] and place[1]:
        from batch_emulator.render import task_dir_relative

        ctx.service.janitor.discard(account.node_root(place[0], place[1]) / task_dir_relative(task))
    ctx.service.persist()
    return empty_response(200)


def list_subtasks(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/tasks/{taskId}/subtasksinfo``: the subtasks of a multi-instance task's latest run."""
    account = ctx.service.account
    with account.lock:
        job = get_job(account, ctx.params["jobId"])
        task = model.get_task(job, ctx.params["taskId"])
        run = job.multi_runs.get(task.key)
        values = [subtask_wire(task, subtask, ctx.base_url) for subtask in run.subtasks] if run else []
    return json_response({"odata.metadata": metadata(ctx.base_url, "subtaskinfo", element=False), "value": values})


ROUTES = [
    Route("POST", "/jobs/{jobId}/tasks", create_task),
    Route("GET", "/jobs/{jobId}/tasks", list_tasks),
    Route("POST", "/jobs/{jobId}/addtaskcollection", add_task_collection),
    Route("GET", "/jobs/{jobId}/tasks/{taskId}", get_task),
    Route("PUT", "/jobs/{jobId}/tasks/{taskId}", replace_task),
    Route("DELETE", "/jobs/{jobId}/tasks/{taskId}", delete_task),
    Route("POST", "/jobs/{jobId}/tasks/{taskId}/terminate", terminate_task),
    Route("POST", "/jobs/{jobId}/tasks/{taskId}/reactivate", reactivate_task),
    Route("GET", "/jobs/{jobId}/tasks/{taskId}/subtasksinfo", list_subtasks),
]
