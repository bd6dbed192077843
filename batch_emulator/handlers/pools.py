"""Pool operations: create, exists (HEAD), get, list, resize, stop resize, remove nodes, update, delete."""

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
    list_response,
    listed_response,
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


def _location(ctx: RequestContext, pool: Pool) -> str:
    return f"{ctx.base_url}/pools/{seg(pool.id)}"


def _find(ctx: RequestContext, account: Account) -> Pool:
    return model.get_pool(account, ctx.params["poolId"])


def create_pool(ctx: RequestContext) -> Response:
    """``POST /pools`` → 201."""
    body = ctx.json()
    return created_response(ctx, lambda account: model.create_pool(account, body, ctx.now), partial(_location, ctx))


def pool_exists(ctx: RequestContext) -> Response:
    """``HEAD /pools/{poolId}`` → 200, or 404 PoolNotFound."""
    return exists_response(ctx, partial(_find, ctx))


def get_pool(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}``."""
    return get_response(ctx, partial(_find, ctx), entity_set="pools", render=partial(_pool_wire, ctx))


def list_pools(ctx: RequestContext) -> Response:
    """``GET /pools`` with ``$filter``, ``$select``, ``maxresults``; in id order, as the service lists them."""

    def pools(account: Account) -> list[Pool]:
        return sorted(account.pools.values(), key=lambda pool: pool.key)

    return listed_response(ctx, pools, entity_set="pools", render=partial(_pool_wire, ctx))


def change_pool(
    ctx: RequestContext, apply: Callable[[Account, Pool], Pool], *, status: int, action: str = ""
) -> Response:
    """Apply a change to the pool named in the path under the lock, save, and answer ``status`` without a body.

    The pool must not be being deleted and the request's conditions (``If-Match``...) must hold; the answer
    carries the pool's ``ETag``, ``Last-Modified`` and ``DataServiceId`` (the pool's URL, or its ``action``'s).

    Raises:
        BatchError: no such pool, a pool being deleted, a failed condition, or what ``apply`` raises.
    """

    def located(pool: Pool) -> str:
        return _location(ctx, pool) + (f"/{action}" if action else "")

    def find(account: Account) -> Pool:
        return model.active_pool(account, ctx.params["poolId"])

    return change_response(ctx, find, apply, status=status, location=located)


def resize_pool(ctx: RequestContext) -> Response:
    """``POST /pools/{poolId}/resize`` → 202 (v15 then polls until ``allocationState`` is steady)."""
    body = model.resize_options(ctx.json())
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
    return deleted_response(
        ctx, partial(_find, ctx), lambda account, pool: model.delete_pool(account, pool.id, ctx.now)
    )


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
    return list_response(ctx, entries, entity_set="poolnodecounts", render=lambda entry: entry, max_results=10)


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
