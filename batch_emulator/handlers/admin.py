"""Admin endpoints under ``/_emulator/`` (no auth, loopback clients only): faults, reset, health, stats."""

from __future__ import annotations

import json

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import InvalidRequestBody
from batch_emulator.faults import FaultSpec, FaultSpecError
from batch_emulator.handlers.common import json_response
from batch_emulator.routing import Route

ADMIN_PREFIX = "/_emulator"


def get_faults(ctx: RequestContext) -> Response:
    """``GET /_emulator/faults``: the fault spec in force."""
    return json_response(ctx.service.faults.spec.as_dict())


def put_faults(ctx: RequestContext) -> Response:
    """``PUT /_emulator/faults``: replace the spec; body ``{"spec": "throttle=0.2,seed=1"}`` or the spec as text."""
    text = ctx.body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("spec") or "")
        except (ValueError, AttributeError) as error:
            raise InvalidRequestBody('Send {"spec": "..."} or the spec as plain text.') from error
    try:
        spec = FaultSpec.parse(text)
    except FaultSpecError as error:
        raise InvalidRequestBody(f"The fault spec is not valid: {error}") from error
    service = ctx.service
    with service.account.lock:
        service.faults.replace(spec)
        service.faults.apply_quotas(service.account.quotas)
    return json_response(spec.as_dict())


def reset(ctx: RequestContext) -> Response:
    """``POST /_emulator/reset``: forget all state and restore the startup faults."""
    ctx.service.reset()
    return json_response({"status": "reset"})


def health(ctx: RequestContext) -> Response:
    """``GET /_emulator/health``."""
    return json_response({"status": "ok", "account": ctx.service.account.name, "url": ctx.base_url})


def stats(ctx: RequestContext) -> Response:
    """``GET /_emulator/stats``: requests served, tasks started/completed, current resources."""
    account = ctx.service.account
    with account.lock:
        body = account.stats.as_dict()
        body.update(
            {
                "pools": len(account.pools),
                "nodes": sum(len(pool.nodes) for pool in account.pools.values()),
                "jobs": len(account.jobs),
                "tasks": sum(len(job.tasks) for job in account.jobs.values()),
                "processesRunning": ctx.service.scheduler.in_flight,
            }
        )
    return json_response(body)


ROUTES = [
    Route("GET", f"{ADMIN_PREFIX}/faults", get_faults, admin=True),
    Route("PUT", f"{ADMIN_PREFIX}/faults", put_faults, admin=True),
    Route("POST", f"{ADMIN_PREFIX}/reset", reset, admin=True),
    Route("GET", f"{ADMIN_PREFIX}/health", health, admin=True),
    Route("GET", f"{ADMIN_PREFIX}/stats", stats, admin=True),
]
