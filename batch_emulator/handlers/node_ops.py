"""Node operations: reboot, reimage, deallocate, start (202, then the SDK polls the node), scheduling (200)."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import empty_response, entity_headers
from batch_emulator.models import node_ops as model
from batch_emulator.models.nodes import Node
from batch_emulator.render import node_url
from batch_emulator.routing import Route

_NODE = "/pools/{poolId}/nodes/{nodeId}"


def _answer(ctx: RequestContext, node: Node, status: int) -> Response:
    return empty_response(status, entity_headers(node.state_time, node_url(node, ctx.base_url)))


def _operation(ctx: RequestContext, status: int, action: model.NodeAction) -> Response:
    account = ctx.service.account
    body = ctx.json_or_empty()
    with account.lock:
        node = action(account, ctx.params["poolId"], ctx.params["nodeId"], body, ctx.now)
        response = _answer(ctx, node, status)
    ctx.service.persist()
    return response


def reboot_node(ctx: RequestContext) -> Response:
    """``POST .../reboot`` → 202; the node goes ``rebooting``."""
    return _operation(ctx, 202, model.reboot_node)


def reimage_node(ctx: RequestContext) -> Response:
    """``POST .../reimage`` → 202; the node goes ``reimaging``."""
    return _operation(ctx, 202, model.reimage_node)


def deallocate_node(ctx: RequestContext) -> Response:
    """``POST .../deallocate`` → 202; the node goes ``deallocating``."""
    return _operation(ctx, 202, model.deallocate_node)


def start_node(ctx: RequestContext) -> Response:
    """``POST .../start`` → 202; a deallocated node goes ``starting``."""
    return _operation(ctx, 202, model.start_node)


def disable_scheduling(ctx: RequestContext) -> Response:
    """``POST .../disablescheduling`` → 200."""
    return _operation(ctx, 200, model.disable_scheduling)


def enable_scheduling(ctx: RequestContext) -> Response:
    """``POST .../enablescheduling`` → 200."""
    return _operation(ctx, 200, model.enable_scheduling)


ROUTES = [
    Route("POST", f"{_NODE}/reboot", reboot_node),
    Route("POST", f"{_NODE}/reimage", reimage_node),
    Route("POST", f"{_NODE}/deallocate", deallocate_node),
    Route("POST", f"{_NODE}/start", start_node),
    Route("POST", f"{_NODE}/disablescheduling", disable_scheduling),
    Route("POST", f"{_NODE}/enablescheduling", enable_scheduling),
]
