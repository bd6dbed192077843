"""Upload a task's ``outputFiles`` to blob containers (SAS URLs) after the command, per upload condition.

Pattern rules follow the Batch documentation: relative patterns are relative to the task working
directory (``../stdout.txt`` reaches the task directory), ``*``, ``?``, ``[...]`` and recursive ``**``
wildcards, names starting with ``.`` only matched explicitly, ``$VAR`` expanded from the task's
environment first. Without wildcards, ``path`` is the blob name; with wildcards, it is a virtual
directory under which each match keeps its path relative to the pattern's fixed leading directories.
"""

from __future__ import annotations

import base64
import functools
import glob
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape

from batch_emulator.node.failures import Category, failure_info
from batch_emulator.node.redact import redact_url
from batch_emulator.node.transfer import TransferError, blob_url, put

UPLOAD_LOG = "fileuploadout.txt"
UPLOAD_ERROR_LOG = "fileuploaderr.txt"
# One Put Blob up to this size; larger files go up as blocks (Put Block + Put Block List).
SINGLE_PUT_LIMIT = 256 * 1024 * 1024
BLOCK_SIZE = 8 * 1024 * 1024

_WILDCARD = re.compile(r"[*?\[]")
_ESCAPED = re.compile(r"\[([*?\[])\]")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class PlannedUpload:
    """One local file and the blob it goes to."""

    local_path: Path
    container_url: str
    blob_name: str
    headers: dict[str, str]


def _expand(pattern: str, env: Mapping[str, str]) -> str:
    # Substituted values are escaped so a directory name like "run[1]" stays literal.
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return glob.escape(env[name]) if name in env else match.group(0)

    return _VARIABLE.sub(value, pattern)


def _literal(segment: str) -> str | None:
    """The segment's plain text, or ``None`` if it holds an unescaped wildcard (``[*]`` escapes ``*``)."""
    if _WILDCARD.search(_ESCAPED.sub("", segment)):
        return None
    return _ESCAPED.sub(r"\1", segment)


def plan_uploads(output_file: dict[str, Any], working_dir: Path, env: Mapping[str, str]) -> list[PlannedUpload]:
    """Resolve one ``outputFiles`` entry to the files it matches now and their blob names.

    Args:
        output_file: One wire ``outputFiles`` entry.
        working_dir: The task's ``wd/``.
        env: The task environment, for ``$VAR`` in the pattern.

    Returns:
        The uploads to perform (possibly none: a pattern may match nothing).

    Raises:
        KeyError: A required property (``filePattern``, ``destination.container.containerUrl``) is missing.
    """
    container = output_file["destination"]["container"]
    container_url: str = container["containerUrl"]
    path: str = (container.get("path") or "").strip("/")
    headers = {h["name"]: h.get("value") or "" for h in container.get("uploadHeaders") or []}
    headers["x-ms-blob-type"] = "BlockBlob"
    pattern = _expand(output_file["filePattern"], env)
    if not pattern.startswith("/"):
        pattern = f"{glob.escape(str(working_dir))}/{pattern}"
    segments = pattern.split("/")
    fixed: list[str] = []
    for segment in segments:
        literal = _literal(segment)
        if literal is None:
            break
        fixed.append(literal)
    if len(fixed) == len(segments):
        single = "/".join(fixed)
        if not os.path.isfile(single):
            return []
        return [PlannedUpload(Path(single), container_url, path or os.path.basename(single), headers)]
    base = "/".join(fixed) or "/"
    uploads = []
    for match in sorted(glob.glob(pattern, recursive=True)):
        if os.path.isfile(match):
            relative = os.path.relpath(match, base)
            blob_name = f"{path}/{relative}" if path else relative
            uploads.append(PlannedUpload(Path(match), container_url, blob_name, headers))
    return uploads


def _open(path: Path, offset: int = 0, length: int | None = None) -> IO[bytes] | bytes:
    if length is None:
        return path.open("rb")
    with path.open("rb") as source:
        source.seek(offset)
        return source.read(length)


def upload(planned: PlannedUpload, cancel: threading.Event) -> int:
    """Upload one file as a block blob (one Put Blob, or blocks for large files).

    Args:
        planned: From :func:`plan_uploads`.
        cancel: Stops retry back-offs early.

    Returns:
        The number of bytes uploaded.

    Raises:
        TransferError: The upload failed.
        OSError: The local file cannot be read.
    """
    size = planned.local_path.stat().st_size
    target = blob_url(planned.container_url, planned.blob_name)
    if size <= SINGLE_PUT_LIMIT:
        put(target, lambda: _open(planned.local_path), planned.headers, cancel)
        return size
    block_ids = []
    block_headers = {k: v for k, v in planned.headers.items() if k.lower() != "x-ms-blob-type"}
    for number, offset in enumerate(range(0, size, BLOCK_SIZE)):
        block_id = base64.b64encode(f"{number:08d}".encode()).decode()
        block_ids.append(block_id)
        query = "comp=block&blockid=" + block_id.replace("=", "%3D")
        put(
            blob_url(planned.container_url, planned.blob_name, query),
            functools.partial(_open, planned.local_path, offset, BLOCK_SIZE),
            {},
            cancel,
        )
    block_list = "".join(f"<Latest>{escape(b)}</Latest>" for b in block_ids)
    body = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{block_list}</BlockList>'.encode()
    put(blob_url(planned.container_url, planned.blob_name, "comp=blocklist"), lambda: body, block_headers, cancel)
    return size


def _upload_failure(error: TransferError, planned: PlannedUpload) -> dict[str, Any]:
    category: Category
    if error.status == 404 and error.storage_code == "ContainerNotFound":
        code, category = "FileUploadContainerNotFound", "usererror"
        reason = "One of the specified Azure container(s) was not found while attempting to upload an output file"
    else:
        code = "FileUploadMiscError"
        category = "usererror" if error.status is not None and 400 <= error.status < 500 else "servererror"
        reason = "Uploading an output file failed"
    message = f"{reason}: {planned.local_path.name} to {error.url}: {error.describe()}"
    return failure_info(
        category,
        code,
        message,
        FilePath=str(planned.local_path),
        Url=error.url,
        HttpStatusCode=error.status,
        StorageErrorCode=error.storage_code,
    )


def upload_output_files(
    output_files: list[dict[str, Any]],
    *,
    task_dir: Path,
    working_dir: Path,
    env: Mapping[str, str],
    succeeded: bool,
    cancel: threading.Event,
) -> dict[str, Any] | None:
    """Upload the output files whose condition matches, logging to ``fileuploadout.txt``/``fileuploaderr.txt``.

    Every entry is attempted even after a failure, as the node agent does; the first failure is reported.

    Args:
        output_files: The wire ``outputFiles`` list.
        task_dir: The task directory (gets the two upload logs).
        working_dir: The task's ``wd/``.
        env: The task environment.
        succeeded: Whether the command succeeded (exit code 0), for ``tasksuccess``/``taskfailure``.
        cancel: Stops retry back-offs early.

    Returns:
        ``None`` if every upload succeeded, else the first failure's wire ``failureInfo``.
    """
    wanted = {"taskcompletion", "tasksuccess" if succeeded else "taskfailure"}
    first_failure: dict[str, Any] | None = None
    log: list[str] = []
    errors: list[str] = []
    for output_file in output_files:
        condition = str((output_file.get("uploadOptions") or {}).get("uploadCondition", "tasksuccess")).lower()
        if condition not in wanted:
            continue
        try:
            planned_uploads = plan_uploads(output_file, working_dir, env)
        except (KeyError, TypeError) as error:
            info = failure_info("usererror", "FileUploadMiscError", f"Invalid outputFiles entry: missing {error}")
            errors.append(info["message"])
            first_failure = first_failure or info
            continue
        for planned in planned_uploads:
            try:
                size = upload(planned, cancel)
                destination = redact_url(blob_url(planned.container_url, planned.blob_name))
                log.append(f"Uploaded {planned.local_path} to {destination} ({size} bytes)")
            except TransferError as error:
                info = _upload_failure(error, planned)
                errors.append(info["message"])
                first_failure = first_failure or info
            except OSError as error:
                info = failure_info(
                    "servererror", "FileUploadMiscError", f"Reading {planned.local_path} failed: {error.strerror}"
                )
                errors.append(info["message"])
                first_failure = first_failure or info
    (task_dir / UPLOAD_LOG).write_text("".join(line + "\n" for line in log), encoding="utf-8")
    (task_dir / UPLOAD_ERROR_LOG).write_text("".join(line + "\n" for line in errors), encoding="utf-8")
    return first_failure
