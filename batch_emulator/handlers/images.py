"""Account-level catalogues: supported images (with ``$filter``) and applications (none here)."""

from __future__ import annotations

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import ApplicationNotFound
from batch_emulator.handlers.common import json_response, list_response
from batch_emulator.render import metadata
from batch_emulator.routing import Route


def list_supported_images(ctx: RequestContext) -> Response:
    """``GET /supportedimages`` (e.g. ``$filter=osType eq 'linux'``)."""
    images = ctx.service.account.catalog.supported_images()
    return list_response(
        ctx,
        images,
        entity_set="supportedimages",
        render=lambda image: image,
        seq=lambda image: images.index(image) + 1,
    )


def list_applications(ctx: RequestContext) -> Response:
    """``GET /applications``: the local service has no application packages."""
    return json_response({"odata.metadata": metadata(ctx.base_url, "applications", element=False), "value": []})


def get_application(ctx: RequestContext) -> Response:
    """``GET /applications/{applicationId}``: always 404 ApplicationNotFound."""
    raise ApplicationNotFound()


ROUTES = [
    Route("GET", "/supportedimages", list_supported_images),
    Route("GET", "/applications", list_applications),
    Route("GET", "/applications/{applicationId}", get_application),
]
