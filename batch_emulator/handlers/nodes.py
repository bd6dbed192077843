"""Compute node operations: list and get (node actions answer 501, see ``handlers.unimplemented``)."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import (
    entity_response,
    list_response,
)
from batch_emulator.models.nodes import find_node
from batch_emulator.models.pools import get_pool
from batch_emulator.render import node_wire
from batch_emulator.routing import Route


def list_nodes(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes``, in id order as the service lists them."""
    account = ctx.service.account
    with account.lock:
        pool = get_pool(account, ctx.params["poolId"])
        nodes = sorted(pool.nodes.values(), key=lambda node: node.id)
        position = {node.id: index + 1 for index, node in enumerate(nodes)}
        return list_response(
            ctx,
            nodes,
            entity_set="nodes",
            render=lambda node: node_wire(node, ctx.base_url),
            seq=lambda node: position[node.id],
        )


def get_node(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes/{nodeId}``."""
    account = ctx.service.account
    with account.lock:
        node = find_node(get_pool(account, ctx.params["poolId"]), ctx.params["nodeId"])
        wire = node_wire(node, ctx.base_url)
        return entity_response(ctx, entity_set="nodes", wire=wire, last_modified=node.state_time)


ROUTES = [
    Route("GET", "/pools/{poolId}/nodes", list_nodes),
    Route("GET", "/pools/{poolId}/nodes/{nodeId}", get_node),
]
