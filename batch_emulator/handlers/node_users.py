"""Node user accounts (create 201, replace 200, delete 200) and remote login settings."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.handlers.common import empty_response, entity_headers, json_response
from batch_emulator.models import node_users as model
from batch_emulator.models.node_ops import operable_node
from batch_emulator.models.node_users import NodeUser
from batch_emulator.render import node_url, remote_login_wire, seg
from batch_emulator.routing import Route

_NODE = "/pools/{poolId}/nodes/{nodeId}"


def _user_response(ctx: RequestContext, user: NodeUser, status: int) -> Response:
    """The answer to a create or replace: the user's URL as ``DataServiceId`` (call under the account lock)."""
    node = operable_node(ctx.service.account, ctx.params["poolId"], ctx.params["nodeId"])
    location = f"{node_url(node, ctx.base_url)}/users/{seg(user.name)}"
    return empty_response(status, entity_headers(node.state_time, location))


def create_node_user(ctx: RequestContext) -> Response:
    """``POST .../users`` → 201 (409 ``NodeUserExists`` for a second one of the same name)."""
    account = ctx.service.account
    body = ctx.json()
    with account.lock:
        user = model.create_node_user(account, ctx.params["poolId"], ctx.params["nodeId"], body, ctx.now)
        response = _user_response(ctx, user, 201)
    ctx.service.persist()
    return response


def replace_node_user(ctx: RequestContext) -> Response:
    """``PUT .../users/{userName}`` → 200 (404 ``NodeUserNotFound``)."""
    account = ctx.service.account
    body = ctx.json()
    params = ctx.params
    with account.lock:
        user = model.replace_node_user(account, params["poolId"], params["nodeId"], params["userName"], body, ctx.now)
        response = _user_response(ctx, user, 200)
    ctx.service.persist()
    return response


def delete_node_user(ctx: RequestContext) -> Response:
    """``DELETE .../users/{userName}`` → 200 (404 ``NodeUserNotFound``)."""
    account = ctx.service.account
    with account.lock:
        model.delete_node_user(account, ctx.params["poolId"], ctx.params["nodeId"], ctx.params["userName"])
    ctx.service.persist()
    return empty_response(200)


def get_remote_login_settings(ctx: RequestContext) -> Response:
    """``GET .../remoteloginsettings``: loopback and the node's stable SSH frontend port (nothing listens)."""
    account = ctx.service.account
    with account.lock:
        node = operable_node(account, ctx.params["poolId"], ctx.params["nodeId"])
        url = node_url(node, ctx.base_url)
        headers = entity_headers(node.state_time, f"{url}/remoteloginsettings")
        return json_response(remote_login_wire(node, ctx.base_url), headers=headers)


ROUTES = [
    Route("POST", f"{_NODE}/users", create_node_user),
    Route("PUT", f"{_NODE}/users/{{userName}}", replace_node_user),
    Route("DELETE", f"{_NODE}/users/{{userName}}", delete_node_user),
    Route("GET", f"{_NODE}/remoteloginsettings", get_remote_login_settings),
]
