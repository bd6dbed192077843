"""Upload a node's Batch service logs to a blob container (``POST .../uploadbatchservicelogs``).

The emulated node agent's log is the node's lifecycle as the service recorded it (state changes, start
task runs, errors), rendered as ``agent.log``; the start task's ``stdout.txt`` and ``stderr.txt`` go
with it when they were written in the requested time range. Everything lands under the virtual
directory ``<poolId>/<nodeId>/<unique id>`` of the container, as the service names it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from batch_emulator.node.outputs import PlannedUpload, upload
from batch_emulator.node.transfer import blob_url, put
from batch_emulator.timefmt import iso

AGENT_LOG = "agent.log"
START_TASK_LOGS = ("stdout.txt", "stderr.txt")
_BLOCK_BLOB = {"x-ms-blob-type": "BlockBlob"}


@dataclass(frozen=True)
class LogUpload:
    """What one upload request asks for (times as Unix timestamps)."""

    container_url: str
    start_time: float
    end_time: float | None
    pool_id: str
    node_id: str
    node_root: Path
    events: Sequence[tuple[float, str]]


def agent_log(events: Sequence[tuple[float, str]], start: float, end: float | None) -> bytes:
    """The agent log lines between ``start`` and ``end`` (inclusive)."""
    lines = [f"{iso(when)} {what}\n" for when, what in events if when >= start and (end is None or when <= end)]
    return "".join(lines).encode("utf-8")


def upload_service_logs(request: LogUpload, cancel: threading.Event) -> tuple[str, int]:
    """Upload the logs.

    Args:
        request: Where from and where to.
        cancel: Stops retry back-offs early.

    Returns:
        The virtual directory and the number of files uploaded.

    Raises:
        TransferError: an upload failed (the URL in it is redacted).
    """
    directory = f"{request.pool_id}/{request.node_id}/{uuid.uuid4()}"
    body = agent_log(request.events, request.start_time, request.end_time)
    put(blob_url(request.container_url, f"{directory}/{AGENT_LOG}"), lambda: body, _BLOCK_BLOB, cancel)
    count = 1
    startup = request.node_root / "startup"
    for name in START_TASK_LOGS:
        path = startup / name
        try:
            modified = path.stat().st_mtime
        except OSError:
            continue
        if modified < request.start_time:
            continue
        upload(PlannedUpload(path, request.container_url, f"{directory}/startup/{name}", dict(_BLOCK_BLOB)), cancel)
        count += 1
    return directory, count
