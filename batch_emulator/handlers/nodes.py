"""Compute node operations: list and get (node actions answer 501, see ``handlers.unimplemented``)."""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import get_response, listed_response
from batch_emulator.models.account import Account
from batch_emulator.models.nodes import Node, find_node
from batch_emulator.models.pools import get_pool
from batch_emulator.render import node_wire
from batch_emulator.routing import Route


def _wire(ctx: RequestContext, node: Node) -> dict[str, Any]:
    return node_wire(node, ctx.base_url)


def list_nodes(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes``, in id order as the service lists them."""

    def nodes(account: Account) -> list[Node]:
        return sorted(get_pool(account, ctx.params["poolId"]).nodes.values(), key=lambda node: node.id)

    return listed_response(ctx, nodes, entity_set="nodes", render=partial(_wire, ctx))


def get_node(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes/{nodeId}``."""
    return get_response(
        ctx,
        lambda account: find_node(get_pool(account, ctx.params["poolId"]), ctx.params["nodeId"]),
        entity_set="nodes",
        render=partial(_wire, ctx),
        last_modified=lambda node: node.state_time,
    )


ROUTES = [
    Route("GET", "/pools/{poolId}/nodes", list_nodes),
    Route("GET", "/pools/{poolId}/nodes/{nodeId}", get_node),
]
