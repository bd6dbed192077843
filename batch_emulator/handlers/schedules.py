"""Job schedule operations: create, exists (HEAD), get, list, update/replace, disable, enable, terminate,
delete, and the jobs a schedule has made."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import (
    check_conditions,
    empty_response,
    entity_headers,
    entity_response,
    list_response,
    with_stats,
)
from batch_emulator.handlers.jobs import job_wire_of
from batch_emulator.models import schedules as model
from batch_emulator.models.account import Account
from batch_emulator.models.schedules import Schedule
from batch_emulator.render import schedule_stats, schedule_wire, seg
from batch_emulator.routing import Route

_ENTITY_SET = "jobschedules"
ChangeFunction = Callable[[Account, str], Schedule]


def _location(ctx: RequestContext, schedule: Schedule, action: str = "") -> str:
    return f"{ctx.base_url}/jobschedules/{seg(schedule.id)}{action}"


def _schedule_wire(ctx: RequestContext, schedule: Schedule) -> dict[str, Any]:
    def measured() -> dict[str, Any]:
        jobs = model.jobs_of(ctx.service.account, schedule)
        return schedule_stats(schedule, jobs, ctx.base_url, ctx.now)

    return with_stats(ctx, schedule_wire(schedule, ctx.base_url), measured)


def create_schedule(ctx: RequestContext) -> Response:
    """``POST /jobschedules`` → 201 (the first job is made at once unless ``doNotRunUntil`` is later)."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        schedule = model.create_schedule(account, body, ctx.now)
        headers = entity_headers(schedule.last_modified, _location(ctx, schedule))
    ctx.service.persist()
    return empty_response(201, headers)


def schedule_exists(ctx: RequestContext) -> Response:
    """``HEAD /jobschedules/{jobScheduleId}`` → 200, or 404."""
    account = ctx.service.account
    with account.lock:
        schedule = model.get_schedule(account, ctx.params["jobScheduleId"])
        check_conditions(ctx, schedule.last_modified)
        return empty_response(200, entity_headers(schedule.last_modified))


def get_schedule(ctx: RequestContext) -> Response:
    """``GET /jobschedules/{jobScheduleId}``."""
    account = ctx.service.account
    with account.lock:
        schedule = model.get_schedule(account, ctx.params["jobScheduleId"])
        wire = _schedule_wire(ctx, schedule)
        return entity_response(ctx, entity_set=_ENTITY_SET, wire=wire, last_modified=schedule.last_modified)


def list_schedules(ctx: RequestContext) -> Response:
    """``GET /jobschedules``."""
    account = ctx.service.account
    with account.lock:
        return list_response(
            ctx,
            list(account.schedules.values()),
            entity_set=_ENTITY_SET,
            render=lambda schedule: _schedule_wire(ctx, schedule),
            seq=lambda schedule: schedule.seq,
        )


def list_schedule_jobs(ctx: RequestContext) -> Response:
    """``GET /jobschedules/{jobScheduleId}/jobs``: the jobs the schedule made that still exist."""
    account = ctx.service.account
    with account.lock:
        schedule = model.get_schedule(account, ctx.params["jobScheduleId"])
        return list_response(
            ctx,
            model.jobs_of(account, schedule),
            entity_set="jobs",
            render=lambda job: job_wire_of(ctx, job),
            seq=lambda job: job.seq,
        )


def _change(ctx: RequestContext, status: int, action: str, apply: ChangeFunction) -> Response:
    account = ctx.service.account
    with account.lock:
        schedule = model.get_schedule(account, ctx.params["jobScheduleId"])
        check_conditions(ctx, schedule.last_modified)
        schedule = apply(account, schedule.id)
        headers = entity_headers(schedule.last_modified, _location(ctx, schedule, action))
    ctx.service.persist()
    return empty_response(status, headers)


def patch_schedule(ctx: RequestContext) -> Response:
    """``PATCH /jobschedules/{jobScheduleId}`` → 200."""
    return _update(ctx, replace=False)


def replace_schedule(ctx: RequestContext) -> Response:
    """``PUT /jobschedules/{jobScheduleId}`` → 200."""
    return _update(ctx, replace=True)


def _update(ctx: RequestContext, *, replace: bool) -> Response:
    body = ctx.json()
    clock = ctx.service.clock
    return _change(
        ctx, 200, "", lambda account, sid: model.update_schedule(account, sid, body, ctx.now, clock, replace=replace)
    )


def disable_schedule(ctx: RequestContext) -> Response:
    """``POST /jobschedules/{jobScheduleId}/disable`` → 204."""
    return _change(ctx, 204, "/disable", lambda account, sid: model.set_enabled(account, sid, False, ctx.now))


def enable_schedule(ctx: RequestContext) -> Response:
    """``POST /jobschedules/{jobScheduleId}/enable`` → 204."""
    return _change(ctx, 204, "/enable", lambda account, sid: model.set_enabled(account, sid, True, ctx.now))


def terminate_schedule(ctx: RequestContext) -> Response:
    """``POST /jobschedules/{jobScheduleId}/terminate`` → 202 (v15 polls while it is ``terminating``)."""
    return _change(ctx, 202, "/terminate", lambda account, sid: model.terminate_schedule(account, sid, ctx.now))


def delete_schedule(ctx: RequestContext) -> Response:
    """``DELETE /jobschedules/{jobScheduleId}`` → 202 (v15 polls until 404); its jobs are deleted too."""
    account = ctx.service.account
    with account.lock:
        schedule = model.get_schedule(account, ctx.params["jobScheduleId"])
        check_conditions(ctx, schedule.last_modified)
        model.delete_schedule(account, schedule.id, ctx.now)
    ctx.service.persist()
    return empty_response(202)


ROUTES = [
    Route("POST", "/jobschedules", create_schedule),
    Route("GET", "/jobschedules", list_schedules),
    Route("HEAD", "/jobschedules/{jobScheduleId}", schedule_exists),
    Route("GET", "/jobschedules/{jobScheduleId}", get_schedule),
    Route("PATCH", "/jobschedules/{jobScheduleId}", patch_schedule),
    Route("PUT", "/jobschedules/{jobScheduleId}", replace_schedule),
    Route("DELETE", "/jobschedules/{jobScheduleId}", delete_schedule),
    Route("POST", "/jobschedules/{jobScheduleId}/disable", disable_schedule),
    Route("POST", "/jobschedules/{jobScheduleId}/enable", enable_schedule),
    Route("POST", "/jobschedules/{jobScheduleId}/terminate", terminate_schedule),
    Route("GET", "/jobschedules/{jobScheduleId}/jobs", list_schedule_jobs),
]
