"""Download a task's ``resourceFiles`` into its working directory before the command runs.

Supported: ``httpUrl`` (a blob SAS URL, or any plain URL) and ``storageContainerUrl`` with an
optional ``blobPrefix`` (List Blobs with the SAS, then each blob). ``autoStorageContainerName``
needs a storage account linked to the Batch account, which the emulator does not have.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from batch_emulator.node.failures import Category, failure_info
from batch_emulator.node.redact import redact_url
from batch_emulator.node.transfer import TransferError, blob_url, container_query_url, download, get_bytes

DEFAULT_FILE_MODE = 0o770  # what Batch applies on Linux when fileMode is not given


class ResourceFileError(Exception):
    """A resource file could not be placed; carries the wire ``failureInfo``."""

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info["message"])
        self.info = info


def check_file_path(file_path: str) -> str | None:
    """Validate a ``filePath`` as Batch does: relative, and not breaking out of the working directory.

    Args:
        file_path: The resource file's ``filePath``.

    Returns:
        ``None`` when valid, otherwise why not (usable in an ``InvalidPropertyValue`` error).
    """
    if "\x00" in file_path:
        return "filePath must not contain NUL characters"
    if file_path.startswith("/"):
        return f"filePath {file_path!r} must be relative to the task working directory"
    depth = 0
    for segment in file_path.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return f"filePath {file_path!r} cannot break out of the task working directory (for example by '..')"
        elif segment not in ("", "."):
            depth += 1
    return None


def _destination(working_dir: Path, file_path: str) -> Path:
    problem = check_file_path(file_path)
    if problem is None:
        target = Path(os.path.normpath(working_dir / file_path))
        # A symlink left in wd by an earlier attempt must not lead outside it either.
        real_parent = os.path.realpath(target.parent)
        real_root = os.path.realpath(working_dir)
        if real_parent == real_root or real_parent.startswith(real_root + os.sep):
            if target != working_dir:
                return target
            problem = f"filePath {file_path!r} names the working directory itself, not a file"
        else:
            problem = f"filePath {file_path!r} leads outside the task working directory"
    raise ResourceFileError(failure_info("usererror", "ResourceFileCreateFailed", problem, FilePath=file_path))


def _category(error: TransferError) -> Category:
    return "usererror" if error.status is not None and 400 <= error.status < 500 else "servererror"


def _download_failure(error: TransferError, file_path: str) -> dict[str, Any]:
    category: Category
    if error.kind == "local":
        code, category = "ResourceFileWriteFailed", "servererror"
    elif error.status == 404:
        code, category = "BlobNotFound", "usererror"
    elif error.status in (401, 403):
        code, category = "BlobAccessDenied", "usererror"
    elif error.kind == "timeout":
        code, category = "BlobDownloadTimedOut", "servererror"
    else:
        code, category = "BlobDownloadMiscError", _category(error)
    message = f"Resource file {file_path!r} could not be downloaded from {error.url}: {error.describe()}"
    return failure_info(
        category,
        code,
        message,
        FilePath=file_path,
        Url=error.url,
        HttpStatusCode=error.status,
        StorageErrorCode=error.storage_code,
    )


def _list_failure(error: TransferError, container_url: str) -> dict[str, Any]:
    category: Category
    if error.status in (401, 403):
        code, category = "ResourceContainerAccessDenied", "usererror"
    else:
        code, category = "ResourceContainerListMiscError", _category(error)
    url = redact_url(container_url)
    message = f"Listing the blobs of storageContainerUrl {url} failed: {error.describe()}"
    return failure_info(
        category, code, message, Url=url, HttpStatusCode=error.status, StorageErrorCode=error.storage_code
    )


def _list_blob_names(container_url: str, prefix: str, cancel: threading.Event) -> Iterator[str]:
    marker = ""
    while True:
        query = "restype=container&comp=list"
        if prefix:
            query += "&prefix=" + quote(prefix, safe="")
        if marker:
            query += "&marker=" + quote(marker, safe="")
        page = get_bytes(container_query_url(container_url, query), cancel)
        # The XML comes from the storage endpoint the task itself names.
        root = ElementTree.fromstring(page)  # noqa: S314
        for name in root.iterfind("./Blobs/Blob/Name"):
            if name.text and not name.text.endswith("/"):
                yield name.text
        marker = root.findtext("NextMarker") or ""
        if not marker:
            return


def _apply_mode(path: Path, file_mode: str | None, file_path: str) -> None:
    try:
        mode = DEFAULT_FILE_MODE if file_mode is None else int(file_mode, 8)
    except ValueError:
        info = failure_info(
            "usererror",
            "ResourceFileCreateFailed",
            f"fileMode {file_mode!r} is not an octal number",
            FilePath=file_path,
        )
        raise ResourceFileError(info) from None
    os.chmod(path, mode & 0o7777)


def _fetch(url: str, working_dir: Path, file_path: str, file_mode: str | None, cancel: threading.Event) -> None:
    target = _destination(working_dir, file_path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        info = failure_info(
            "servererror", "ResourceDirectoryCreateFailed", f"{error.strerror}: {target.parent}", FilePath=file_path
        )
        raise ResourceFileError(info) from None
    try:
        download(url, target, cancel)
    except TransferError as error:
        raise ResourceFileError(_download_failure(error, file_path)) from None
    _apply_mode(target, file_mode, file_path)


def _place(resource: dict[str, Any], working_dir: Path, cancel: threading.Event) -> None:
    file_path: str = resource.get("filePath") or ""
    file_mode: str | None = resource.get("fileMode")
    if resource.get("autoStorageContainerName"):
        name = resource["autoStorageContainerName"]
        message = (
            f"autoStorageContainerName {name!r} is not supported locally: the emulator has no auto-storage "
            "account linked to the Batch account; use storageContainerUrl with a SAS URL instead"
        )
        raise ResourceFileError(failure_info("usererror", "AutoStorageNotSupported", message, FilePath=file_path))
    if resource.get("httpUrl"):
        if not file_path:
            message = "filePath is required for a resource file given by httpUrl"
            raise ResourceFileError(failure_info("usererror", "ResourceFileCreateFailed", message))
        _fetch(resource["httpUrl"], working_dir, file_path, file_mode, cancel)
        return
    container_url = resource.get("storageContainerUrl")
    if not container_url:
        message = "a resource file needs exactly one of httpUrl, storageContainerUrl or autoStorageContainerName"
        raise ResourceFileError(failure_info("usererror", "ResourceFileCreateFailed", message, FilePath=file_path))
    try:
        names = list(_list_blob_names(container_url, resource.get("blobPrefix") or "", cancel))
    except TransferError as error:
        raise ResourceFileError(_list_failure(error, container_url)) from None
    except ElementTree.ParseError as error:
        info = failure_info(
            "servererror",
            "ResourceContainerListMiscError",
            f"The List Blobs answer of {redact_url(container_url)} is not valid XML: {error}",
        )
        raise ResourceFileError(info) from None
    for name in names:
        # Batch keeps the blob's full name (virtual directories included) under filePath.
        _fetch(
            blob_url(container_url, name), working_dir, f"{file_path.rstrip('/')}/{name}".lstrip("/"), file_mode, cancel
        )


def download_resource_files(
    resource_files: list[dict[str, Any]], working_dir: Path, cancel: threading.Event
) -> dict[str, Any] | None:
    """Place every resource file in ``working_dir``, in order, stopping at the first failure.

    Args:
        resource_files: The wire ``resourceFiles`` list.
        working_dir: The task's ``wd/`` (must exist).
        cancel: Stops retry back-offs early.

    Returns:
        ``None`` on success, else the wire ``failureInfo`` (no SAS signature in it).
    """
    for resource in resource_files:
        try:
            _place(resource, working_dir, cancel)
        except ResourceFileError as error:
            return error.info
    return None
