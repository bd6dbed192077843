"""Response helpers shared by the handlers: JSON bodies, entity headers, conditions and list paging."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import BatchError, ConditionNotMet
from batch_emulator.odata import (
    Resolver,
    apply_select,
    dict_resolver,
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

if TYPE_CHECKING:
    from batch_emulator.models.account import Account

JSON_MEDIA_TYPE = "application/json;odata=minimalmetadata"
T = TypeVar("T")


class Versioned(Protocol):
    """An entity with a version: its ``last_modified`` gives the ``ETag`` and ``Last-Modified`` headers."""

    @property
    def last_modified(self) -> float:
        """When the entity last changed (seconds since the epoch)."""
        ...


F = TypeVar("F", bound=Versioned)
V = TypeVar("V", bound=Versioned)


class NotModified(BatchError, status=304, code="ConditionNotMet", message="The resource has not been modified."):
    """``If-None-Match`` matched on a GET (304, no body)."""


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
    seq: Callable[[T], int] | None = None,
    resolver: Callable[[T], Resolver] | None = None,
    max_results: int = 1000,
) -> Response:
    """Render one page of a list operation with ``$filter``, ``$select``, ``maxresults`` and ``odata.nextLink``.

    Args:
        ctx: The request.
        items: All items in sequence order.
        entity_set: OData entity set name for ``odata.metadata``.
        render: Wire JSON of one item.
        seq: Sequence number of one item (paging position); by default its position in ``items``, from 1.
        resolver: Property resolver for ``$filter`` (default: resolve on the rendered JSON).
        max_results: Largest page the operation allows.

    Returns:
        The response.

    Raises:
        InvalidQueryParameterValue: a malformed query parameter.
    """
    predicate = parse_filter(ctx.query.get("$filter"))
    names = parse_select(ctx.query.get("$select"))
    limit = parse_max_results(ctx.query.get("maxresults"), max_results)
    after = parse_skiptoken(ctx.query.get("$skiptoken"))
    resolve = resolver or (lambda item: dict_resolver(render(item)))
    numbered = [(seq(item), item) for item in items] if seq else list(enumerate(items, start=1))

    def keep(entry: tuple[int, T]) -> bool:
        return predicate is None or predicate(resolve(entry[1]))

    page, resume = paginate(numbered, seq=lambda entry: entry[0], after=after, limit=limit, keep=keep)
    body: dict[str, Any] = {
        "odata.metadata": metadata(ctx.base_url, entity_set, element=False),
        "value": [apply_select(adapt(entity_set, render(item), ctx.api_version), names) for _, item in page],
    }
    if resume is not None:
        body["odata.nextLink"] = next_link(ctx.origin, ctx.raw_path, ctx.query, resume)
    return json_response(body)


def _last_modified(entity: Any) -> float:
    return float(entity.last_modified)


def get_response(
    ctx: RequestContext,
    find: Callable[[Account], T],
    *,
    entity_set: str,
    render: Callable[[T], dict[str, Any]],
    last_modified: Callable[[T], float] = _last_modified,
    location: Callable[[T], str] | None = None,
) -> Response:
    """Answer a get of one entity: under the account lock, ``find`` it, ``render`` it, answer as
    :func:`entity_response` does (its version is ``last_modified`` of it, by default its own ``last_modified``).

    Raises:
        BatchError: what ``find`` or ``render`` raises (e.g. ``PoolNotFound``), or a failed condition.
    """
    account = ctx.service.account
    with account.lock:
        entity = find(account)
        wire = render(entity)
        where = location(entity) if location else None
        return entity_response(
            ctx, entity_set=entity_set, wire=wire, last_modified=last_modified(entity), location=where
        )


def listed_response(
    ctx: RequestContext,
    items: Callable[[Account], Iterable[T]],
    *,
    entity_set: str,
    render: Callable[[T], dict[str, Any]],
    seq: Callable[[T], int] | None = None,
    resolver: Callable[[T], Resolver] | None = None,
) -> Response:
    """Answer a list operation: under the account lock, take the ``items`` and answer as :func:`list_response`.

    Raises:
        BatchError: what ``items`` raises (e.g. ``JobNotFound``), or a malformed query parameter.
    """
    account = ctx.service.account
    with account.lock:
        return list_response(ctx, items(account), entity_set=entity_set, render=render, seq=seq, resolver=resolver)


def exists_response(ctx: RequestContext, find: Callable[[Account], Versioned]) -> Response:
    """Answer an exists check (``HEAD``): 200 with the entity's headers, after the request's conditions.

    Raises:
        BatchError: what ``find`` raises (e.g. ``PoolNotFound``, 404), or a failed condition.
    """
    account = ctx.service.account
    with account.lock:
        entity = find(account)
        check_conditions(ctx, entity.last_modified)
        return empty_response(200, entity_headers(entity.last_modified))


def changed_response(
    ctx: RequestContext, change: Callable[[Account], V], *, status: int, location: Callable[[V], str]
) -> Response:
    """Apply ``change`` under the account lock, save, and answer ``status`` without a body, with the changed
    entity's ``ETag``, ``Last-Modified`` and ``location`` as ``DataServiceId``.

    Raises:
        BatchError: what ``change`` raises.
    """
    account = ctx.service.account
    with account.lock:
        entity = change(account)
        headers = entity_headers(entity.last_modified, location(entity))
    ctx.service.persist()
    return empty_response(status, headers)


def created_response(ctx: RequestContext, create: Callable[[Account], V], location: Callable[[V], str]) -> Response:
    """Answer a create: :func:`changed_response` with 201.

    Raises:
        BatchError: what ``create`` raises (e.g. ``PoolExists``, an invalid body).
    """
    return changed_response(ctx, create, status=201, location=location)


def change_response(
    ctx: RequestContext,
    find: Callable[[Account], F],
    apply: Callable[[Account, F], V],
    *,
    status: int,
    location: Callable[[V], str],
) -> Response:
    """Answer a change of one entity: ``find`` it, check the request's conditions (``If-Match``...) against it,
    ``apply`` the change to it, and answer as :func:`changed_response`.

    Raises:
        BatchError: what ``find`` or ``apply`` raises, or a failed condition (412).
    """

    def checked(account: Account) -> V:
        found = find(account)
        check_conditions(ctx, found.last_modified)
        return apply(account, found)

    return changed_response(ctx, checked, status=status, location=location)


def deleted_response(
    ctx: RequestContext, find: Callable[[Account], F], delete: Callable[[Account, F], object], status: int = 202
) -> Response:
    """Answer a delete: ``find`` the entity, check the request's conditions, ``delete`` it, save, answer ``status``.

    Raises:
        BatchError: what ``find`` or ``delete`` raises, or a failed condition (412).
    """
    account = ctx.service.account
    with account.lock:
        found = find(account)
        check_conditions(ctx, found.last_modified)
        delete(account, found)
    ctx.service.persist()
    return empty_response(status)
