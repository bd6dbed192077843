"""Node diagnostics: upload the Batch service logs to a container, list and get the node's VM extensions."""

from __future__ import annotations

import threading
from functools import partial

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.handlers.common import get_response, json_response, listed_response
from batch_emulator.models.account import Account
from batch_emulator.models.node_extensions import find_extension, node_extensions
from batch_emulator.models.node_ops import operable_node
from batch_emulator.models.nodes import Node
from batch_emulator.models.validation import require_object, require_str
from batch_emulator.node.service_logs import LogUpload, upload_service_logs
from batch_emulator.node.transfer import TransferError, map_storage_url
from batch_emulator.render import node_extension_wire, upload_logs_wire
from batch_emulator.routing import Route
from batch_emulator.timefmt import parse_iso

_NODE = "/pools/{poolId}/nodes/{nodeId}"


def _time(data: dict[str, object], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    try:
        return parse_iso(str(value)).timestamp()
    except ValueError as error:
        raise InvalidPropertyValue(name, value, "The value must be an ISO-8601 date and time.") from error


def upload_logs(ctx: RequestContext) -> Response:
    """``POST .../uploadbatchservicelogs``: uploads now (the service does it in the background) and answers 200.

    Raises:
        BatchError: invalid body (400), unknown pool or node (404), or the container refused the upload (400).
    """
    account = ctx.service.account
    data = require_object(ctx.json())
    container_url = require_str(data, "containerUrl")
    start = _time(data, "startTime")
    if start is None:
        raise InvalidPropertyValue("startTime", None, "startTime is required.")
    end = _time(data, "endTime")
    with account.lock:
        node = operable_node(account, ctx.params["poolId"], ctx.params["nodeId"])
        request = LogUpload(
            container_url=map_storage_url(container_url, account.storage_endpoint),
            start_time=start,
            end_time=end,
            pool_id=node.pool.id,
            node_id=node.id,
            node_root=account.node_root(node.pool.id, node.id),
            events=list(node.events),
        )
    try:
        directory, count = upload_service_logs(request, threading.Event())
    except TransferError as error:
        reason = f"The container refused the upload of the logs: {error.describe()}."
        raise InvalidPropertyValue("containerUrl", error.url, reason) from None
    return json_response(upload_logs_wire(ctx.base_url, directory, count))


def _node(ctx: RequestContext, account: Account) -> Node:
    return operable_node(account, ctx.params["poolId"], ctx.params["nodeId"])


def list_extensions(ctx: RequestContext) -> Response:
    """``GET .../extensions``: the pool's extensions and Batch's node extension."""
    return listed_response(
        ctx, lambda account: node_extensions(_node(ctx, account)), entity_set="extensions", render=node_extension_wire
    )


def get_extension(ctx: RequestContext) -> Response:
    """``GET .../extensions/{extensionName}`` (404 ``ResourceNotFound`` for another name)."""
    return get_response(
        ctx,
        partial(_node, ctx),
        entity_set="extensions",
        render=lambda node: node_extension_wire(find_extension(node, ctx.params["extensionName"])),
        last_modified=lambda node: node.state_time,
    )


ROUTES = [
    Route("POST", f"{_NODE}/uploadbatchservicelogs", upload_logs),
    Route("GET", f"{_NODE}/extensions", list_extensions),
    Route("GET", f"{_NODE}/extensions/{{extensionName}}", get_extension),
]
