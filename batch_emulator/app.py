"""The HTTP application: a starlette app whose middleware runs, in order,
request id and logging → route match (on the raw path) → authentication → fault injection → handler.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from batch_emulator.arm import handlers as arm
from batch_emulator.arm.auth import verify_arm
from batch_emulator.arm.errors import arm_error_body, is_arm_path
from batch_emulator.config import LOOPBACK_HOSTS
from batch_emulator.context import RequestContext
from batch_emulator.errors import (
    BatchError,
    Forbidden,
    InternalError,
    InvalidUri,
    MissingRequiredQueryParameter,
    RequestBodyTooLarge,
)
from batch_emulator.handlers import (
    admin,
    autoscale,
    certificates,
    files,
    images,
    jobs,
    node_diagnostics,
    node_ops,
    node_users,
    nodes,
    pools,
    schedules,
    tasks,
    unimplemented,
    usage,
)
from batch_emulator.handlers.common import json_response
from batch_emulator.routing import Route, Router
from batch_emulator.service import BatchService
from batch_emulator.timefmt import from_ts, now_ts
from batch_emulator.wire_versions import check_api_version

_access_log = logging.getLogger("batch_emulator.access")
_log = logging.getLogger("batch_emulator")
MAX_BODY_BYTES = 1024 * 1024
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_STATE = "batch"  # scope key of the per-request state the middleware shares


def all_routes() -> list[Route]:
    """Every operation of the service."""
    modules = (
        pools,
        autoscale,
        nodes,
        node_ops,
        node_users,
        node_diagnostics,
        jobs,
        schedules,
        tasks,
        files,
        images,
        certificates,
        admin,
        arm,
        usage,
        unimplemented,
    )
    return [route for module in modules for route in module.ROUTES]


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    if raw:
        return bytes(raw).decode("latin-1").split("?", 1)[0]
    return str(scope["path"])


def _first_values(raw_query: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(raw_query, keep_blank_values=True).items()}


class RequestLogMiddleware:
    """Gives every request a request id, echoes ``client-request-id``, renders Batch errors, logs."""

    def __init__(self, app: ASGIApp, service: BatchService) -> None:
        """Wrap ``app``."""
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        request_id = str(uuid.uuid4())
        client_request_id = headers.get("client-request-id")
        host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("127.0.0.1", 0))
        origin = f"{scope['scheme']}://{host}"
        state: dict[str, Any] = {"request_id": request_id, "origin": origin, "base_url": origin}
        scope[_STATE] = state
        self.service.account.stats.requests += 1
        status = [0]
        response_started = [False]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_started[0] = True
                status[0] = message["status"]
                extra = [(b"request-id", request_id.encode()), (b"dataserviceversion", b"3.0")]
                if client_request_id:
                    extra.append((b"client-request-id", client_request_id.encode("latin-1")))
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except BatchError as error:
            if response_started[0]:
                raise
            await self._error(error, scope, state).__call__(scope, receive, send_with_ids)
        except Exception:  # every failure still answers in the Batch error shape
            _log.exception("unexpected error for %s %s", scope["method"], _raw_path(scope))
            if response_started[0]:
                raise
            await self._error(InternalError(), scope, state).__call__(scope, receive, send_with_ids)
        finally:
            _access_log.info(
                "%s %s -> %d (%.1f ms) request-id=%s",
                scope["method"],
                _raw_path(scope),
                status[0],
                (time.perf_counter() - started) * 1000,
                request_id,
            )

    @staticmethod
    def _error(error: BatchError, scope: Scope, state: dict[str, Any]) -> Response:
        if error.status >= 500 or error.status == 403:
            _log.warning("answering %d %s: %s", error.status, error.code, error.message)
        if error.status == 304 or scope["method"] == "HEAD":
            return Response(b"", status_code=error.status, headers=error.headers)
        if is_arm_path(_raw_path(scope)):
            return arm.arm_json(arm_error_body(error), error.status, error.headers)
        body = error.to_body(state["base_url"], state["request_id"], from_ts(now_ts()))
        return json_response(body, error.status, error.headers)


class RouteMiddleware:
    """Matches the raw path to an operation and checks ``api-version``.

    An endpoint with the account as its path (``http://127.0.0.1:8001/localbatch``, Azurite style) works too:
    the SDKs keep such a prefix, sign it, and the service strips it for routing only.
    """

    def __init__(self, app: ASGIApp, router: Router, account_name: str) -> None:
        """Wrap ``app``."""
        self.app = app
        self.router = router
        self.prefix = f"/{account_name}"

    def _match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str], str]:
        try:
            route, params = self.router.match(method, raw_path)
            return route, params, ""
        except InvalidUri:
            if not raw_path.startswith(self.prefix + "/"):
                raise
        route, params = self.router.match(method, raw_path[len(self.prefix) :])
        return route, params, self.prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = _raw_path(scope)
        route, params, prefix = self._match(scope["method"], raw_path)
        raw_query = bytes(scope.get("query_string") or b"").decode("latin-1")
        query = _first_values(raw_query)
        if not route.admin:
            if not query.get("api-version"):
                raise MissingRequiredQueryParameter("api-version")
            if not route.arm:  # the management plane has api-versions of its own
                check_api_version(query["api-version"])
        state = scope[_STATE]
        state.update(route=route, params=params, raw_path=raw_path, raw_query=raw_query, query=query)
        state["base_url"] += prefix
        await self.app(scope, receive, send)


class AuthMiddleware:
    """SharedKey (or, in development mode, Bearer) for the API; Bearer for ARM routes; loopback-only for admin."""

    def __init__(self, app: ASGIApp, service: BatchService) -> None:
        """Wrap ``app``."""
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope[_STATE]
        route: Route = state["route"]
        client = (scope.get("client") or ("", 0))[0]
        headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
        if route.admin:
            if client not in LOOPBACK_HOSTS:
                raise Forbidden()
        elif route.arm:
            verify_arm(headers, client, allow_bearer=self.service.verifier.allow_bearer)
        else:
            self.service.verifier.verify(scope["method"], state["raw_path"], state["raw_query"], headers)
        await self.app(scope, receive, send)


class FaultMiddleware:
    """Injected throttling and server errors (API routes only, after authentication)."""

    def __init__(self, app: ASGIApp, service: BatchService) -> None:
        """Wrap ``app``."""
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] == "http" and not scope[_STATE]["route"].admin:
            fault = self.service.faults.request_fault()
            if fault is not None:
                raise fault
        await self.app(scope, receive, send)


async def _read_body(request: Request) -> bytes:
    """Read the body; past 1 MB keep draining it (a client still sending must see our answer) and refuse it.

    Raises:
        RequestBodyTooLarge: the body exceeds 1 MB.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise RequestBodyTooLarge()
    return b"".join(chunks)


def create_app(service: BatchService) -> Starlette:
    """Build the ASGI application of a service.

    Args:
        service: The service the handlers act on.

    Returns:
        The starlette application.
    """

    async def endpoint(request: Request) -> Response:
        state = request.scope[_STATE]
        body = await _read_body(request) if request.method in ("POST", "PUT", "PATCH") else b""
        ctx = RequestContext(
            service=service,
            method=request.method,
            raw_path=state["raw_path"],
            raw_query=state["raw_query"],
            query=state["query"],
            headers=request.headers,
            params=state["params"],
            request_id=state["request_id"],
            base_url=state["base_url"],
            origin=state["origin"],
            now=now_ts(),
            client_host=request.client.host if request.client else "",
            body=body,
        )
        route: Route = state["route"]
        return route.handler(ctx)

    middleware: Iterable[Middleware] = [
        Middleware(RequestLogMiddleware, service=service),
        Middleware(RouteMiddleware, router=Router(all_routes()), account_name=service.account.name),
        Middleware(AuthMiddleware, service=service),
        Middleware(FaultMiddleware, service=service),
    ]
    return Starlette(routes=[StarletteRoute("/{path:path}", endpoint, methods=_METHODS)], middleware=list(middleware))
