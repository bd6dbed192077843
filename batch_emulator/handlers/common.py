"""Response helpers shared by the handlers: JSON bodies, entity headers, conditions and list paging."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import BatchError, ConditionNotMet
from batch_emulator.odata import (
    Resolver,
    apply_select,
    next_link,
    paginate,
    parse_filter,
    parse_max_results,
    parse_select,
    parse_skiptoken,
)
from batch_emulator.render import metadata
from batch_emulator.timefmt import etag_for, parse_http_date, rfc1123
from batch_emulator.wire_versions import adapt

JSON_MEDIA_TYPE = "application/json;odata=minimalmetadata"
T = TypeVar("T")


class NotModified(BatchError):
    """``If-None-Match`` matched on a GET (304, no body)."""

    status = 304
    code = "ConditionNotMet"
    default_message = "The resource has not been modified."


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None, media_type: str = JSON_MEDIA_TYPE
) -> Response:
    """A compact UTF-8 JSON response, with Batch's content type unless another is given."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=media_type)


def empty_response(status: int, headers: Mapping[str, str] | None = None) -> Response:
    """A response without a body (201/202/204, HEAD)."""
    return Response(b"", status_code=status, headers=dict(headers or {}))


def entity_headers(last_modified: float, data_service_id: str | None = None) -> dict[str, str]:
    """``ETag`` and ``Last-Modified`` (and ``DataServiceId`` for creates) of an entity."""
    headers = {"ETag": etag_for(last_modified), "Last-Modified": rfc1123(last_modified)}
    if data_service_id is not None:
        headers["DataServiceId"] = data_service_id
    return headers


def _etags(value: str) -> list[str]:
    return [item.strip().strip('"') for item in value.split(",") if item.strip()]


def check_conditions(ctx: RequestContext, last_modified: float) -> None:
    """Evaluate ``If-Match``, ``If-None-Match``, ``If-Modified-Since`` and ``If-Unmodified-Since``.

    Raises:
        ConditionNotMet: a precondition failed (412).
        NotModified: a GET whose ``If-None-Match``/``If-Modified-Since`` says the client is current (304).
    """
    etag = etag_for(last_modified)
    reading = ctx.method in ("GET", "HEAD")
    if_match = ctx.headers.get("if-match")
    if if_match and "*" not in _etags(if_match) and etag not in _etags(if_match):
        raise ConditionNotMet()
    if_none_match = ctx.headers.get("if-none-match")
    if if_none_match and ("*" in _etags(if_none_match) or etag in _etags(if_none_match)):
        raise NotModified() if reading else ConditionNotMet()
    modified = int(last_modified)
    since = parse_http_date(ctx.headers.get("if-modified-since", ""))
    if since is not None and modified <= since.timestamp():
        raise NotModified() if reading else ConditionNotMet()
    unmodified = parse_http_date(ctx.headers.get("if-unmodified-since", ""))
    if unmodified is not None and modified > unmodified.timestamp():
        raise ConditionNotMet()


def with_stats(ctx: RequestContext, wire: dict[str, Any], stats: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``wire`` with its ``stats`` when ``$expand`` asks for them (``$expand=stats``)."""
    expand = ctx.query.get("$expand") or ""
    if "stats" in {part.strip().lower() for part in expand.split(",")}:
        wire["stats"] = stats()
    return wire


def select_one(ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
    """Apply ``$select`` to a single entity."""
    return apply_select(body, parse_select(ctx.query.get("$select")))


def entity_response(
    ctx: RequestContext,
    *,
    entity_set: str,
    wire: dict[str, Any],
    last_modified: float,
    location: str | None = None,
) -> Response:
    """Answer a get of one entity: conditions checked, ``$select`` applied, ``odata.metadata`` and entity headers.

    Raises:
        ConditionNotMet: a precondition failed (412).
        NotModified: the client's copy is current (304).
    """
    check_conditions(ctx, last_modified)
    body: dict[str, Any] = {"odata.metadata": metadata(ctx.base_url, entity_set, element=True)}
    body.update(select_one(ctx, adapt(entity_set, wire, ctx.api_version)))
    return json_response(body, headers=entity_headers(last_modified, location))


def list_response(
    ctx: RequestContext,
    items: Iterable[T],
    *,
    entity_set: str,
    render: Callable[[T], dict[str, Any]],
    seq: Callable[[T], int],
    resolver: Callable[[T], Resolver] | None = None,
    max_results: int = 1000,
) -> Response:
    """Render one page of a list operation with ``$filter``, ``$select``, ``maxresults`` and ``odata.nextLink``.

    Args:
        ctx: The request.
        items: All items in sequence order.
        entity_set: OData entity set name for ``odata.metadata``.
        render: Wire JSON of one item.
        seq: Sequence number of one item (paging position).
        resolver: Property resolver for ``$filter`` (default: resolve on the rendered JSON).
        max_results: Largest page the operation allows.

    Returns:
        The response.

    Raises:
        InvalidQueryParameterValue: a malformed query parameter.
    """
    from batch_emulator.odata import dict_resolver

    predicate = parse_filter(ctx.query.get("$filter"))
    names = parse_select(ctx.query.get("$select"))
    limit = parse_max_results(ctx.query.get("maxresults"), max_results)
    after = parse_skiptoken(ctx.query.get("$skiptoken"))
    resolve = resolver or (lambda item: dict_resolver(render(item)))

    def keep(item: T) -> bool:
        return predicate is None or predicate(resolve(item))

    page, resume = paginate(items, seq=seq, after=after, limit=limit, keep=keep)
    body: dict[str, Any] = {
        "odata.metadata": metadata(ctx.base_url, entity_set, element=False),
        "value": [apply_select(adapt(entity_set, render(item), ctx.api_version), names) for item in page],
    }
    if resume is not None:
        body["odata.nextLink"] = next_link(ctx.origin, ctx.raw_path, ctx.query, resume)
    return json_response(body)
