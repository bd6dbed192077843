"""Node operations: reboot, reimage, deallocate, start (202, then the SDK polls the node), scheduling (200)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import empty_response, entity_headers
from batch_emulator.models import node_ops as model
from batch_emulator.render import node_url
from batch_emulator.routing import Route

_NODE = "/pools/{poolId}/nodes/{nodeId}"


def _operation(status: int, action: model.NodeAction) -> Callable[[RequestContext], Response]:
    """A handler: parse the (optional) body, apply ``action`` to the node, answer ``status`` with its headers."""

    def handler(ctx: RequestContext) -> Response:
        account = ctx.service.account
        body = ctx.json_or_empty()
        with account.lock:
            node = action(account, ctx.params["poolId"], ctx.params["nodeId"], body, ctx.now)
            response = empty_response(status, entity_headers(node.state_time, node_url(node, ctx.base_url)))
        ctx.service.persist()
        return response

    return handler


# 202 for the operations the SDK polls (the node's state changes at once), 200 for scheduling changes.
ROUTES = [
    Route("POST", f"{_NODE}/reboot", _operation(202, model.reboot_node)),
    Route("POST", f"{_NODE}/reimage", _operation(202, model.reimage_node)),
    Route("POST", f"{_NODE}/deallocate", _operation(202, model.deallocate_node)),
    Route("POST", f"{_NODE}/start", _operation(202, model.start_node)),
    Route("POST", f"{_NODE}/disablescheduling", _operation(200, model.disable_scheduling)),
    Route("POST", f"{_NODE}/enablescheduling", _operation(200, model.enable_scheduling)),
]
