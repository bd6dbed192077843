"""Account-level catalogues: supported images (with ``$filter``) and applications (none here)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import ApplicationNotFound
from batch_emulator.handlers.common import json_response, list_response
from batch_emulator.render import metadata
from batch_emulator.routing import Route
from batch_emulator.timefmt import from_ts


def list_supported_images(ctx: RequestContext) -> Response:
    """``GET /supportedimages`` (e.g. ``$filter=osType eq 'linux'``)."""
    images = ctx.service.account.catalog.supported_images(from_ts(ctx.now))
    return list_response(ctx, images, entity_set="supportedimages", render=lambda image: image)


def list_node_agent_skus(ctx: RequestContext) -> Response:
    """``GET /nodeagentskus`` (api-versions before 2019-08-01; older clients still call it)."""
    skus: dict[str, dict[str, Any]] = {}
    for image in ctx.service.account.catalog.supported_images(from_ts(ctx.now)):
        entry = skus.setdefault(
            image["nodeAgentSKUId"],
            {"id": image["nodeAgentSKUId"], "verifiedImageReferences": [], "osType": image["osType"]},
        )
        entry["verifiedImageReferences"].append(image["imageReference"])
    return list_response(ctx, list(skus.values()), entity_set="nodeagentskus", render=lambda sku: sku)


def list_applications(ctx: RequestContext) -> Response:
    """``GET /applications``: the local service has no application packages."""
    return json_response({"odata.metadata": metadata(ctx.base_url, "applications", element=False), "value": []})


def get_application(ctx: RequestContext) -> Response:
    """``GET /applications/{applicationId}``: always 404 ApplicationNotFound."""
    raise ApplicationNotFound()


ROUTES = [
    Route("GET", "/supportedimages", list_supported_images),
    Route("GET", "/nodeagentskus", list_node_agent_skus),
    Route("GET", "/applications", list_applications),
    Route("GET", "/applications/{applicationId}", get_application),
]
