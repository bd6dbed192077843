"""Pool autoscale operations: enable, disable and evaluate a formula."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import check_conditions, empty_response, entity_headers, json_response
from batch_emulator.models import autoscale as model
from batch_emulator.models.account import Account
from batch_emulator.models.pools import Pool, active_pool
from batch_emulator.render import seg
from batch_emulator.routing import Route

RUN_METADATA = "/$metadata#Microsoft.Azure.Batch.Protocol.Entities.AutoScaleRun"


def enable_autoscale(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/enableautoscale`` → 200; the formula is evaluated at once, then every interval."""
    body = ctx.json()
    clock = ctx.service.clock
    return _change(
        ctx, "enableautoscale", lambda account, pool: model.enable_autoscale(account, pool, body, ctx.now, clock)
    )


def disable_autoscale(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/disableautoscale`` → 200; the pool keeps its current targets."""
    return _change(ctx, "disableautoscale", lambda account, pool: model.disable_autoscale(account, pool, ctx.now))


def _change(ctx: RequestContext, action: str, apply: Callable[[Account, Pool], Pool]) -> Response:
    account = ctx.service.account
    with account.lock:
        pool = active_pool(account, ctx.params["poolId"])
        check_conditions(ctx, pool.last_modified)
        apply(account, pool)
        headers = entity_headers(pool.last_modified, f"{ctx.base_url}/pools/{seg(pool.id)}/{action}")
    ctx.service.persist()
    return empty_response(200, headers)


def evaluate_autoscale(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/evaluateautoscale`` → 200 ``AutoScaleRun`` (formula errors are inside it)."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        pool = active_pool(account, ctx.params["poolId"])
        model.require_enabled(pool)
        formula = model.validate_formula_text(body)
        run = model.run_formula(account, pool, formula, ctx.now, ctx.service.clock)
    wire = {"odata.metadata": ctx.base_url + RUN_METADATA, **model.evaluation_wire(run)}
    return json_response(wire, headers={"DataServiceId": f"{ctx.base_url}/pools/{seg(pool.id)}/evaluateautoscale"})


ROUTES = [
    Route("POST", "/pools/{poolId}/enableautoscale", enable_autoscale),
    Route("POST", "/pools/{poolId}/disableautoscale", disable_autoscale),
    Route("POST", "/pools/{poolId}/evaluateautoscale", evaluate_autoscale),
]
