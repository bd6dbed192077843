"""Storage steps: containers, uploads (cached by content), downloads (verified), deletion."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from batchpipe.clients import blob_service_client
from batchpipe.errors import BatchpipeError, InputError, OutputWriteError, PipelineFailed
from batchpipe.naming import InputFile
from batchpipe.settings import Settings
from tasks._common import AZURE_RETRIES, FIRST_CONTACT, azure_call

# Parallel blob transfers per step: enough to hide latency, few enough for a 2-core laptop.
UPLOAD_CONCURRENCY = 8


@task(name="create-containers", cache_policy=NO_CACHE, **AZURE_RETRIES)
def create_containers(settings: Settings, names: list[str]) -> list[str]:
    """Create the blob containers; existing ones are fine.

    Args:
        settings: the run's settings.
        names: container names.

    Returns:
        The names of the containers that were newly created.

    Raises:
        CloudError: Storage refused (bad credentials, invalid name, ...) or cannot be reached (not retried).
    """
    logger = get_run_logger()
    client = blob_service_client(settings)
    created = []
    for name in names:  # the run's first requests to Storage: an unreachable endpoint fails at once
        with azure_call("Storage", f"creating container {name!r}", first_contact=True):
            try:
                client.create_container(name, **FIRST_CONTACT)
                created.append(name)
            except ResourceExistsError:
                pass
    logger.info("Containers ready: %s (new: %s)", ", ".join(names), ", ".join(created) or "none")
    return created


def _upload_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Same files into the same container *instance* → cached. A deleted and recreated container has a new
    ETag, so its blobs are uploaded again instead of being wrongly reported as there."""
    settings: Settings = parameters["settings"]
    container: str = parameters["container"]
    items: list[InputFile] = parameters["items"]
    client = blob_service_client(settings)
    try:
        etag = client.get_container_client(container).get_container_properties().etag
    except ResourceNotFoundError:
        etag = "missing"
    digest = hashlib.sha256(f"{client.account_name}\0{container}\0{etag}".encode())
    for item in sorted(items, key=lambda i: i.blob_name):
        digest.update(f"\0{item.blob_name}\0{item.sha256}".encode())
    return "upload-" + digest.hexdigest()


@dataclass(frozen=True)
class UploadReport:
    """What an upload step did: which blobs it wrote and which were already there with the same content."""

    container: str
    uploaded: list[str]
    unchanged: list[str]


@task(
    name="upload-files",
    cache_key_fn=_upload_cache_key,
    persist_result=True,
    task_run_name="upload-{container}",
    **AZURE_RETRIES,
)
def upload_files(settings: Settings, container: str, items: list[InputFile]) -> UploadReport:
    """Upload files as block blobs, skipping each one whose blob already has the same content hash.

    A whole unchanged set is a Prefect cache hit; inside the task, one listing finds the blobs whose
    ``sha256`` metadata already matches, so a partly uploaded set (a crashed run) only uploads the rest.

    Args:
        settings: the run's settings.
        container: destination container.
        items: the files, their blob names and content hashes.

    Returns:
        Which blobs were uploaded and which were unchanged.

    Raises:
        CloudError: Storage refused an upload.
    """
    logger = get_run_logger()
    container_client = blob_service_client(settings).get_container_client(container)
    with azure_call("Storage", f"listing container {container!r}"):
        present = {b.name: (b.metadata or {}).get("sha256") for b in container_client.list_blobs(include=["metadata"])}
    todo = [item for item in items if present.get(item.blob_name) != item.sha256]

    def upload(item: InputFile) -> None:
        with azure_call("Storage", f"uploading {item.blob_name!r} to {container!r}"), item.path.open("rb") as data:
            container_client.upload_blob(
                item.blob_name,
                data,
                overwrite=True,
                length=item.size,
                metadata={"sha256": item.sha256},
                content_settings=ContentSettings(content_type="text/plain; charset=utf-8"),
            )

    with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
        list(pool.map(upload, todo))
    uploaded = [item.blob_name for item in todo]
    unchanged = [item.blob_name for item in items if item not in todo]
    logger.info("Container %s: uploaded %d files, %d unchanged", container, len(uploaded), len(unchanged))
    return UploadReport(container, uploaded, unchanged)


@task(name="list-blob-inputs", cache_policy=NO_CACHE, **AZURE_RETRIES)
def list_blob_inputs(settings: Settings, container: str, prefix: str) -> list[InputFile]:
    """Inputs that are already in storage: every blob under a prefix (one listing; nothing is uploaded).

    Args:
        settings: the run's settings.
        container: the container holding them.
        prefix: the blob name prefix (``incoming/`` or ``incoming/2024-``).

    Returns:
        One input per blob, keyed by its name relative to the prefix's directory; its content hash is the blob's
        Content-MD5 (or its ETag), so a changed blob makes a new run.

    Raises:
        InputError: the container does not exist or nothing is under the prefix.
        CloudError: Storage refused.
    """
    from batchpipe.workload import blob_input_key

    container_client = blob_service_client(settings).get_container_client(container)
    with azure_call("Storage", f"listing blobs under {prefix!r} in {container!r}"):
        try:
            blobs = [b for b in container_client.list_blobs(name_starts_with=prefix or None) if b.size]
        except ResourceNotFoundError:
            raise InputError(f"input blob://{container}/{prefix}: container {container!r} does not exist") from None
    if not blobs:
        raise InputError(f"input blob://{container}/{prefix}: no non-empty blob has this prefix")
    items = []
    for blob in blobs:
        md5 = blob.content_settings.content_md5 if blob.content_settings else None
        identity = "md5:" + bytes(md5).hex() if md5 else f"etag:{blob.etag}"
        key = blob_input_key(blob.name, prefix)
        items.append(InputFile(Path(blob.name), key, identity, blob.size, container=container, source_blob=blob.name))
    get_run_logger().info("Inputs in blob://%s/%s: %d blobs", container, prefix, len(items))
    return items


def output_write_error(path: Path, size: int, error: OSError) -> OutputWriteError:
    """One line for an output that cannot be written: the path, why, and (disk full) the free space needed.

    Args:
        path: the file (or directory) that could not be written.
        size: the bytes it needed.
        error: what the filesystem said.
    """
    why = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        directory = path if path.is_dir() else path.parent
        free = shutil.disk_usage(directory).free if directory.exists() else 0
        return OutputWriteError(
            f"cannot write output {str(path)!r}: {why}; it needs {size:,} bytes, {free:,} are free in "
            f"{str(directory)!r}: free space (or give another --output) and rerun the same command"
        )
    return OutputWriteError(f"cannot write output {str(path)!r}: {why}: give a writable --output and rerun")


@dataclass(frozen=True)
class DownloadedOutput:
    """An output file that is on disk and verified against the blob's size and MD5."""

    blob_name: str
    path: Path
    size: int
    sha256: str = ""


def _download_one(
    client: BlobServiceClient, container: str, blob_name: str, output_dir: Path, strip_prefix: str = ""
) -> DownloadedOutput:
    """Download one blob to a temporary name, verify size and MD5, then move it into place."""
    final = output_dir / blob_name.removeprefix(strip_prefix)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.name}.partial")
    with azure_call("Storage", f"downloading {blob_name!r} from {container!r}"):
        downloader = client.get_blob_client(container, blob_name).download_blob()
        expected_size = downloader.properties.size
        expected_md5 = downloader.properties.content_settings.content_md5
        md5 = hashlib.md5(usedforsecurity=False)
        sha256 = hashlib.sha256()
        size = 0
        try:
            with partial.open("wb") as handle:
                for chunk in downloader.chunks():
                    handle.write(chunk)
                    md5.update(chunk)
                    sha256.update(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException as error:  # no partial file stays behind, whatever stopped the download
            partial.unlink(missing_ok=True)
            if isinstance(error, OSError) and not isinstance(error, ConnectionError):
                raise output_write_error(final, expected_size, error) from None
            raise
    if size != expected_size:
        partial.unlink(missing_ok=True)
        raise PipelineFailed(f"download of {blob_name!r} is {size} bytes, the blob has {expected_size}")
    if expected_md5 and bytes(expected_md5) != md5.digest():
        partial.unlink(missing_ok=True)
        raise PipelineFailed(
            f"download of {blob_name!r} does not match its Content-MD5 "
            f"({base64.b64encode(md5.digest()).decode()} != {base64.b64encode(bytes(expected_md5)).decode()})"
        )
    partial.replace(final)
    return DownloadedOutput(blob_name, final, size, sha256.hexdigest())


@dataclass(frozen=True)
class DownloadReport:
    """Outputs that are on disk and verified, and the ones that could not be downloaded (with why)."""

    downloaded: list[DownloadedOutput]
    missing: dict[str, str]


@task(name="download-outputs", cache_policy=NO_CACHE, **AZURE_RETRIES)
def download_outputs(
    settings: Settings, container: str, blob_names: list[str], output_dir: Path, strip_prefix: str = ""
) -> DownloadReport:
    """Download and verify every output; a file appears under its final name only once verified.

    Args:
        settings: the run's settings.
        container: the output container.
        blob_names: the outputs to fetch.
        output_dir: local directory for the outputs.
        strip_prefix: removed from blob names to make their path under ``output_dir`` (blob directories
            become local directories).

    Returns:
        The verified files, and the blobs that could not be downloaded with the reason.
    """
    logger = get_run_logger()
    client = blob_service_client(settings)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_write_error(output_dir, 0, error) from None

    def fetch(name: str) -> DownloadedOutput | str:
        try:
            return _download_one(client, container, name, output_dir, strip_prefix)
        except OutputWriteError:
            raise  # the output directory cannot take it (disk full, read-only): the other outputs cannot either
        except BatchpipeError as error:
            return error.message

    with ThreadPoolExecutor(max_workers=UPLOAD_CONCURRENCY) as pool:
        results = dict(zip(blob_names, pool.map(fetch, blob_names), strict=True))
    downloaded = [r for r in results.values() if isinstance(r, DownloadedOutput)]
    missing = {name: r for name, r in results.items() if isinstance(r, str)}
    logger.info("Downloaded and verified %d outputs into %s", len(downloaded), output_dir)
    for name, reason in missing.items():
        logger.error("Output %s not downloaded: %s", name, reason)
    return DownloadReport(downloaded, missing)


@task(name="delete-containers", cache_policy=NO_CACHE, **AZURE_RETRIES)
def delete_containers(settings: Settings, names: list[str]) -> list[str]:
    """Delete the containers (missing ones are fine).

    Args:
        settings: the run's settings.
        names: container names.

    Returns:
        The names of the containers that were deleted.

    Raises:
        CloudError: Storage refused.
    """
    client = blob_service_client(settings)
    deleted = []
    for name in names:
        with azure_call("Storage", f"deleting container {name!r}"):
            try:
                client.delete_container(name)
                deleted.append(name)
            except ResourceNotFoundError:
                pass
    get_run_logger().info("Deleted containers: %s", ", ".join(deleted) or "none")
    return deleted
