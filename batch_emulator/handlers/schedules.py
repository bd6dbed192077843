"""Job schedule operations: create, exists (HEAD), get, list, update/replace, disable, enable, terminate,
delete, and the jobs a schedule has made."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import (
    change_response,
    created_response,
    deleted_response,
    exists_response,
    get_response,
    listed_response,
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


def _find(ctx: RequestContext, account: Account) -> Schedule:
    return model.get_schedule(account, ctx.params["jobScheduleId"])


def create_schedule(ctx: RequestContext) -> Response:
    """``POST /jobschedules`` → 201 (the first job is made at once unless ``doNotRunUntil`` is later)."""
    body = ctx.json()
    return created_response(ctx, lambda account: model.create_schedule(account, body, ctx.now), partial(_location, ctx))


def schedule_exists(ctx: RequestContext) -> Response:
    """``HEAD /jobschedules/{jobScheduleId}`` → 200, or 404."""
    return exists_response(ctx, partial(_find, ctx))


def get_schedule(ctx: RequestContext) -> Response:
    """``GET /jobschedules/{jobScheduleId}``."""
    return get_response(ctx, partial(_find, ctx), entity_set=_ENTITY_SET, render=partial(_schedule_wire, ctx))


def list_schedules(ctx: RequestContext) -> Response:
    """``GET /jobschedules``."""
    return listed_response(
        ctx,
        lambda account: list(account.schedules.values()),
        entity_set=_ENTITY_SET,
        render=partial(_schedule_wire, ctx),
        seq=lambda schedule: schedule.seq,
    )


def list_schedule_jobs(ctx: RequestContext) -> Response:
    """``GET /jobschedules/{jobScheduleId}/jobs``: the jobs the schedule made that still exist."""
    return listed_response(
        ctx,
        lambda account: model.jobs_of(account, _find(ctx, account)),
        entity_set="jobs",
        render=partial(job_wire_of, ctx),
        seq=lambda job: job.seq,
    )


def _change(ctx: RequestContext, status: int, action: str, apply: ChangeFunction) -> Response:
    return change_response(
        ctx,
        partial(_find, ctx),
        lambda account, schedule: apply(account, schedule.id),
        status=status,
        location=lambda schedule: _location(ctx, schedule, action),
    )


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
    return deleted_response(
        ctx, partial(_find, ctx), lambda account, schedule: model.delete_schedule(account, schedule.id, ctx.now)
    )


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
