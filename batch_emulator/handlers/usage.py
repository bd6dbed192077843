"""``GET /poolusagemetrics``: core hours per pool and 30-minute interval, from how long nodes were in pools."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import InvalidQueryParameterValue
from batch_emulator.handlers.common import list_response
from batch_emulator.models.stats import USAGE_INTERVAL_SECONDS, usage_metrics
from batch_emulator.render import usage_metrics_wire
from batch_emulator.routing import Route
from batch_emulator.timefmt import parse_iso


def _time(ctx: RequestContext, name: str, default: float) -> float:
    # The SDKs send ``startTime`` and ``endtime``: query names compare without case here.
    value = next((item for key, item in ctx.query.items() if key.lower() == name), None)
    if value is None:
        return default
    try:
        return parse_iso(value).timestamp()
    except ValueError as error:
        raise InvalidQueryParameterValue(name, value, "The value must be an ISO-8601 timestamp.") from error


def list_pool_usage_metrics(ctx: RequestContext) -> Response:
    """``GET /poolusagemetrics`` with ``starttime``, ``endtime`` (default: the current interval) and ``$filter``."""
    start = _time(ctx, "starttime", ctx.now - ctx.now % USAGE_INTERVAL_SECONDS)
    end = min(_time(ctx, "endtime", ctx.now), ctx.now)
    account = ctx.service.account
    with account.lock:
        records = usage_metrics(account, start, end)
    return list_response(ctx, records, entity_set="poolusagemetrics", render=usage_metrics_wire)


ROUTES = [Route("GET", "/poolusagemetrics", list_pool_usage_metrics)]
