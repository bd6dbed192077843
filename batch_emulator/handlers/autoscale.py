"""Pool autoscale operations: enable, disable and evaluate a formula."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import json_response
from batch_emulator.handlers.pools import change_pool
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

    def enable(account: Account, pool: Pool) -> Pool:
        return model.enable_autoscale(account, pool, body, ctx.now, clock=clock)

    return change_pool(ctx, enable, status=200, action="enableautoscale")


def disable_autoscale(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/disableautoscale`` → 200; the pool keeps its current targets."""

    def disable(account: Account, pool: Pool) -> Pool:
        return model.disable_autoscale(account, pool, ctx.now)

    return change_pool(ctx, disable, status=200, action="disableautoscale")


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
