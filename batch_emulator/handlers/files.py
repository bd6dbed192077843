"""Node and task files: list (optionally recursive), properties (HEAD), download (with ``ocp-range``), delete."""

from __future__ import annotations

import mimetypes
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from starlette.responses import Response, StreamingResponse

from batch_emulator.context import RequestContext
from batch_emulator.errors import (
    BadRequest,
    FileNotFound,
    InvalidRange,
    OperationInvalidForCurrentState,
    TaskFilesUnavailable,
)
from batch_emulator.handlers.common import empty_response, list_response
from batch_emulator.models.jobs import get_job
from batch_emulator.models.nodes import find_node
from batch_emulator.models.pools import get_pool
from batch_emulator.models.tasks import get_task
from batch_emulator.render import seg, task_dir_relative
from batch_emulator.routing import Route
from batch_emulator.timefmt import etag_for, iso, rfc1123

_IN_MEMORY_LIMIT = 1 << 20
_CHUNK = 1 << 16
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class _Place:
    root: Path  # directory the names are relative to
    url: str  # ".../files" URL of that directory


def _node_place(ctx: RequestContext) -> _Place:
    account = ctx.service.account
    with account.lock:
        pool = get_pool(account, ctx.params["poolId"])
        node = find_node(pool, ctx.params["nodeId"])
        root = account.node_root(pool.id, node.id)
        url = f"{ctx.base_url}/pools/{seg(pool.id)}/nodes/{seg(node.id)}/files"
    return _Place(root, url)


def _task_place(ctx: RequestContext) -> _Place:
    account = ctx.service.account
    with account.lock:
        job = get_job(account, ctx.params["jobId"])
        task = get_task(job, ctx.params["taskId"])
        if task.node_id is None or task.pool_id is None:
            raise OperationInvalidForCurrentState(values=[("Reason", "The task has not run on a node.")])
        pool = account.pools.get(task.pool_id.lower())
        if pool is None or task.node_id not in pool.nodes:
            raise TaskFilesUnavailable("The node the task ran on no longer exists.")
        root = account.node_root(pool.id, task.node_id) / task_dir_relative(task)
        url = f"{ctx.base_url}/jobs/{seg(job.id)}/tasks/{seg(task.id)}/files"
    if not root.is_dir():
        raise OperationInvalidForCurrentState(values=[("Reason", "The task has not started on its node yet.")])
    return _Place(root, url)


def _resolve(place: _Place, name: str) -> Path:
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise FileNotFound()
    path = place.root.joinpath(*relative.parts)
    if not path.exists() and not path.is_symlink():
        raise FileNotFound()
    return path


def _mode(info: os.stat_result) -> str:
    return "0" + format(info.st_mode, "o")


def _entry(place: _Place, path: Path) -> dict[str, Any]:
    info = path.stat()
    name = path.relative_to(place.root).as_posix()
    directory = stat.S_ISDIR(info.st_mode)
    entry: dict[str, Any] = {"name": name, "url": f"{place.url}/{seg(name)}", "isDirectory": directory}
    if not directory:  # the service gives directories no properties, and the length as a string
        entry["properties"] = {
            "creationTime": iso(float(info.st_ctime)),
            "lastModified": iso(float(info.st_mtime)),
            "contentLength": str(info.st_size),
            "contentType": content_type(name),
            "fileMode": _mode(info),
        }
    return entry


def content_type(name: str) -> str:
    """The content type the service gives a node file (``text/plain`` for ``stdout.txt``)."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


def _walk(root: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return sorted(root.iterdir())
    found: list[Path] = []
    for directory, names, files in os.walk(root):
        base = Path(directory)
        found.extend(base / name for name in names)
        found.extend(base / name for name in files)
    return sorted(found)


def _list(ctx: RequestContext, place: _Place) -> Response:
    recursive = ctx.query.get("recursive", "false").lower() == "true"
    entries = [_entry(place, path) for path in _walk(place.root, recursive)]
    return list_response(ctx, entries, entity_set="files", render=lambda entry: entry)


def _file_headers(place: _Place, name: str, path: Path) -> dict[str, str]:
    info = path.stat()
    return {
        "ocp-creation-time": rfc1123(float(info.st_ctime)),
        "ocp-batch-file-isdirectory": "true" if stat.S_ISDIR(info.st_mode) else "false",
        "ocp-batch-file-url": f"{place.url}/{seg(name)}",
        "ocp-batch-file-mode": _mode(info),
        "Last-Modified": rfc1123(float(info.st_mtime)),
        "ETag": etag_for(float(info.st_mtime)),
        "Content-Length": str(0 if stat.S_ISDIR(info.st_mode) else info.st_size),
    }


def _properties(place: _Place, name: str) -> Response:
    path = _resolve(place, name)
    return empty_response(200, _file_headers(place, name, path))


def _byte_range(ctx: RequestContext, size: int) -> tuple[int, int] | None:
    text = ctx.headers.get("ocp-range") or ctx.headers.get("range")
    if not text:
        return None
    match = _RANGE.match(text.replace(" ", ""))
    if not match or (not match.group(1) and not match.group(2)):
        raise InvalidRange(f"The range '{text}' is not 'bytes=start-end'.")
    if not match.group(1):  # suffix: the last N bytes
        count = int(match.group(2))
        return max(0, size - count), size
    start = int(match.group(1))
    end = min(int(match.group(2)) + 1, size) if match.group(2) else size
    if (start >= size > 0) or end < start:
        raise InvalidRange()
    return start, end


def _chunks(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = end - start
        while remaining > 0:
            data = handle.read(min(_CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def _download(ctx: RequestContext, place: _Place, name: str) -> Response:
    path = _resolve(place, name)
    if path.is_dir():
        raise BadRequest("The specified path is a directory; list it with the files operation.")
    headers = _file_headers(place, name, path)
    size = int(headers["Content-Length"])
    start, end = _byte_range(ctx, size) or (0, size)
    headers["Content-Length"] = str(end - start)
    if end - start <= _IN_MEMORY_LIMIT:
        with path.open("rb") as handle:
            handle.seek(start)
            content = handle.read(end - start)
        return Response(content, status_code=200, headers=headers, media_type=content_type(name))
    return StreamingResponse(_chunks(path, start, end), status_code=200, headers=headers, media_type=content_type(name))


def _delete(ctx: RequestContext, place: _Place, name: str) -> Response:
    path = _resolve(place, name)
    if path.is_dir():
        if ctx.query.get("recursive", "false").lower() != "true" and any(path.iterdir()):
            raise BadRequest("The directory is not empty; pass recursive=true to delete it.")
        shutil.rmtree(path)
    else:
        path.unlink()
    return empty_response(200)


def list_task_files(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/tasks/{taskId}/files``."""
    return _list(ctx, _task_place(ctx))


def task_file_properties(ctx: RequestContext) -> Response:
    """``HEAD /jobs/{jobId}/tasks/{taskId}/files/{filePath}``."""
    return _properties(_task_place(ctx), ctx.params["filePath"])


def download_task_file(ctx: RequestContext) -> Response:
    """``GET /jobs/{jobId}/tasks/{taskId}/files/{filePath}``."""
    return _download(ctx, _task_place(ctx), ctx.params["filePath"])


def delete_task_file(ctx: RequestContext) -> Response:
    """``DELETE /jobs/{jobId}/tasks/{taskId}/files/{filePath}``."""
    return _delete(ctx, _task_place(ctx), ctx.params["filePath"])


def list_node_files(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes/{nodeId}/files``."""
    return _list(ctx, _node_place(ctx))


def node_file_properties(ctx: RequestContext) -> Response:
    """``HEAD /pools/{poolId}/nodes/{nodeId}/files/{filePath}``."""
    return _properties(_node_place(ctx), ctx.params["filePath"])


def download_node_file(ctx: RequestContext) -> Response:
    """``GET /pools/{poolId}/nodes/{nodeId}/files/{filePath}``."""
    return _download(ctx, _node_place(ctx), ctx.params["filePath"])


def delete_node_file(ctx: RequestContext) -> Response:
    """``DELETE /pools/{poolId}/nodes/{nodeId}/files/{filePath}``."""
    return _delete(ctx, _node_place(ctx), ctx.params["filePath"])


ROUTES = [
    Route("GET", "/jobs/{jobId}/tasks/{taskId}/files", list_task_files),
    Route("HEAD", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}", task_file_properties),
    Route("GET", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}", download_task_file),
    Route("DELETE", "/jobs/{jobId}/tasks/{taskId}/files/{filePath}", delete_task_file),
    Route("GET", "/pools/{poolId}/nodes/{nodeId}/files", list_node_files),
    Route("HEAD", "/pools/{poolId}/nodes/{nodeId}/files/{filePath}", node_file_properties),
    Route("GET", "/pools/{poolId}/nodes/{nodeId}/files/{filePath}", download_node_file),
    Route("DELETE", "/pools/{poolId}/nodes/{nodeId}/files/{filePath}", delete_node_file),
]
