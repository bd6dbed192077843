"""Batch operations the local service does not implement: each answers 501 ``NotImplemented``, never a success."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from batch_emulator.context import RequestContext
from batch_emulator.errors import OperationNotImplemented
from batch_emulator.routing import Route

_OPERATIONS = [
    ("GET", "/poolusagemetrics", "list pool usage metrics"),
    ("POST", "/pools/{poolId}/enableautoscale", "pool autoscale"),
    ("POST", "/pools/{poolId}/disableautoscale", "pool autoscale"),
    ("POST", "/pools/{poolId}/evaluateautoscale", "pool autoscale"),
    ("GET", "/jobschedules", "job schedules"),
    ("POST", "/jobschedules", "job schedules"),
    ("HEAD", "/jobschedules/{jobScheduleId}", "job schedules"),
    ("GET", "/jobschedules/{jobScheduleId}", "job schedules"),
    ("PATCH", "/jobschedules/{jobScheduleId}", "job schedules"),
    ("PUT", "/jobschedules/{jobScheduleId}", "job schedules"),
    ("DELETE", "/jobschedules/{jobScheduleId}", "job schedules"),
    ("POST", "/jobschedules/{jobScheduleId}/disable", "job schedules"),
    ("POST", "/jobschedules/{jobScheduleId}/enable", "job schedules"),
    ("POST", "/jobschedules/{jobScheduleId}/terminate", "job schedules"),
    ("GET", "/jobschedules/{jobScheduleId}/jobs", "job schedules"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/users", "node user accounts"),
    ("PUT", "/pools/{poolId}/nodes/{nodeId}/users/{userName}", "node user accounts"),
    ("DELETE", "/pools/{poolId}/nodes/{nodeId}/users/{userName}", "node user accounts"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/reboot", "rebooting nodes"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/reimage", "reimaging nodes"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/start", "starting deallocated nodes"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/deallocate", "deallocating nodes"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/disablescheduling", "node scheduling changes"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/enablescheduling", "node scheduling changes"),
    ("GET", "/pools/{poolId}/nodes/{nodeId}/remoteloginsettings", "remote login"),
    ("POST", "/pools/{poolId}/nodes/{nodeId}/uploadbatchservicelogs", "uploading Batch service logs"),
    ("GET", "/pools/{poolId}/nodes/{nodeId}/extensions", "VM extensions"),
    ("GET", "/pools/{poolId}/nodes/{nodeId}/extensions/{extensionName}", "VM extensions"),
]


def _refuse(what: str) -> Callable[[RequestContext], Response]:
    def handler(ctx: RequestContext) -> Response:
        raise OperationNotImplemented(what)

    return handler


ROUTES = [Route(method, template, _refuse(what)) for method, template, what in _OPERATIONS]
