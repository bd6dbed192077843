"""Batch operations the local service does not implement: each answers 501 ``NotImplemented``, never a success."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import OperationNotImplemented
from batch_emulator.routing import Route

_OPERATIONS: list[tuple[str, str, str]] = []


def _refuse(what: str) -> Callable[[RequestContext], Response]:
    def handler(ctx: RequestContext) -> Response:
        raise OperationNotImplemented(what)

    return handler


ROUTES = [Route(method, template, _refuse(what)) for method, template, what in _OPERATIONS]
