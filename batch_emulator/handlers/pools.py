"""Pool operations: create, exists (HEAD), get, list, resize, stop resize, remove nodes, update, delete."""

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
from batch_emulator.models import pools as model
from batch_emulator.models import stats
from batch_emulator.models.account import Account
from batch_emulator.models.pools import Pool
from batch_emulator.render import pool_stats, pool_wire, seg
from batch_emulator.routing import Route


def _pool_wire(ctx: RequestContext, pool: Pool) -> dict[str, Any]:
    def measured() -> dict[str, Any]:
        return pool_stats(pool, stats.pool_measures(ctx.service.account, pool, ctx.now), ctx.base_url, ctx.now)

    return with_stats(ctx, pool_wire(pool, ctx.base_url), measured)


def create_pool(ctx: RequestContext) -> Response:
    """``POST /pools`` → 201."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        pool = model.create_pool(account, body, ctx.now)
        headers = entity_headers(pool.last_modified, f"{ctx.base_url}/pools/{seg(pool.id)}")
    ctx.service.persist()
    return empty_response(201, headers)


def pool_exists(ctx: RequestContext) -> Response:
    """``HEAD /pools/{poolId}`` → 200, or 404 PoolNotFound."""
    account = ctx.service.account
    with account.lock:
        pool = model.get_pool(account, ctx.params["poolId"])
        check_conditions(ctx, pool.last_modified)
        return empty_response(200, entity_headers(pool.last_modified))


def get_pool(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}``."""
    account = ctx.service.account
    with account.lock:
        pool = model.get_pool(account, ctx.params["poolId"])
        wire = _pool_wire(ctx, pool)
        return entity_response(ctx, entity_set="pools", wire=wire, last_modified=pool.last_modified)


def list_pools(ctx: RequestContext) -> Response:
    """``GET /pools`` with ``$filter``, ``$select``, ``maxresults``; in id order, as the service lists them."""
    account = ctx.service.account
    with account.lock:
        pools = sorted(account.pools.values(), key=lambda pool: pool.key)
        position = {pool.key: index + 1 for index, pool in enumerate(pools)}
        return list_response(
            ctx,
            pools,
            entity_set="pools",
            render=lambda pool: _pool_wire(ctx, pool),
            seq=lambda pool: position[pool.key],
        )


def change_pool(
    ctx: RequestContext, apply: Callable[[Account, Pool], Pool], *, status: int, action: str = ""
) -> Response:
    """Apply a change to the pool named in the path under the lock, save, and answer ``status`` without a body.

    The pool must not be being deleted and the request's conditions (``If-Match``...) must hold; the answer
    carries the pool's ``ETag``, ``Last-Modified`` and ``DataServiceId`` (the pool's URL, or its ``action``'s).

    Raises:
        BatchError: no such pool, a pool being deleted, a failed condition, or what ``apply`` raises.
    """
    account = ctx.service.account
    with account.lock:
        pool = model.active_pool(account, ctx.params["poolId"])
        check_conditions(ctx, pool.last_modified)
        pool = apply(account, pool)
        location = f"{ctx.base_url}/pools/{seg(pool.id)}" + (f"/{action}" if action else "")
        headers = entity_headers(pool.last_modified, location)
    ctx.service.persist()
    return empty_response(status, headers)


def resize_pool(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/resize`` → 202 (v15 then polls until ``allocationState`` is steady)."""
    body = ctx.json()
    return change_pool(ctx, lambda account, pool: model.resize_pool(account, pool.id, body, ctx.now), status=202)


def stop_resize(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/stopresize`` → 202."""
    return change_pool(ctx, lambda account, pool: model.stop_resize(account, pool.id, ctx.now), status=202)


def remove_nodes(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/removenodes`` → 202."""
    body = ctx.json()
    return change_pool(ctx, lambda account, pool: model.remove_nodes(account, pool.id, body, ctx.now), status=202)


def delete_pool(ctx: RequestContext) -> Response:
    """``DELETE /pools/{poolId}`` → 202 (v15 then polls until 404)."""
    account = ctx.service.account
    with account.lock:
        pool = model.get_pool(account, ctx.params["poolId"])
        check_conditions(ctx, pool.last_modified)
        model.delete_pool(account, ctx.params["poolId"], ctx.now)
        response = empty_response(202)
    ctx.service.persist()
    return response


def patch_pool(ctx: RequestContext) -> Response:
    """``PATCH /pools/{poolId}`` (startTask, metadata, displayName) → 200."""
    return _update(ctx, replace=False, status=200)


def replace_pool_properties(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/updateproperties`` → 204."""
    return _update(ctx, replace=True, status=204)


def _update(ctx: RequestContext, *, replace: bool, status: int) -> Response:
    body = ctx.json()

    def update(account: Account, pool: Pool) -> Pool:
        return model.update_pool_properties(account, pool.id, body, ctx.now, replace=replace)

    return change_pool(ctx, update, status=status)


def node_counts(ctx: RequestContext) -> Response:
    """``GET /nodecounts``: node counts per pool and state."""
    account = ctx.service.account
    with account.lock:
        entries = model.node_counts(account)
    order = {entry["poolId"]: index for index, entry in enumerate(entries)}
    return list_response(
        ctx,
        entries,
        entity_set="poolnodecounts",
        render=lambda entry: entry,
        seq=lambda entry: order[entry["poolId"]] + 1,
        max_results=10,
    )


ROUTES = [
    Route("POST", "/pools", create_pool),
    Route("GET", "/pools", list_pools),
    Route("HEAD", "/pools/{poolId}", pool_exists),
    Route("GET", "/pools/{poolId}", get_pool),
    Route("PATCH", "/pools/{poolId}", patch_pool),
    Route("DELETE", "/pools/{poolId}", delete_pool),
    Route("POST", "/pools/{poolId}/resize", resize_pool),
    Route("POST", "/pools/{poolId}/stopresize", stop_resize),
    Route("POST", "/pools/{poolId}/removenodes", remove_nodes),
    Route("POST", "/pools/{poolId}/updateproperties", replace_pool_properties),
    Route("GET", "/nodecounts", node_counts),
]
