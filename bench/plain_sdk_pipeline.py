"""The pipeline's steps with azure-batch and azure-storage-blob directly, no Prefect: the flow-overhead baseline.

It does what ``flows.pipeline.top_words_pipeline`` does, in the same order and with the same settings
(``BATCHPIPE_*`` variables: endpoints, pool size, poll interval), so that the difference is Prefect's:
build the node application, choose the image, create the containers, upload the application and the inputs (8
threads), sign SAS tokens, create the pool (start task staging the application), the job and the tasks
(``create_tasks``, 8 parallel requests), poll the task counts and the node list with the same backoff, download and
verify (size + Content-MD5) every output, delete the containers, the job and the pool.

Only pure helpers of the project are reused (settings, ids, SAS signing); nothing here imports Prefect.

    BATCHPIPE_... .venv/bin/python bench/plain_sdk_pipeline.py INPUT_DIR --output-dir OUT

Prints one JSON line: ``{"elapsed_s": ..., "tasks": ..., "succeeded": ..., "outputs": ..., "phases": {...}}``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.batch import BatchClient
from azure.batch import models as batchmodels
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from batchpipe.naming import InputFile, file_sha256, job_id_for, output_blob_name, resolve_inputs, task_id_for
from batchpipe.sas import SasSigner, with_token
from batchpipe.settings import Settings, load_settings
from node_app.build import build_package

TRANSFER_THREADS = 8  # as tasks/storage.py
SUBMIT_CONCURRENCY = 8  # as tasks/submission.py
SAS_ENV = "BATCHPIPE_OUTPUT_SAS"
BROKEN_NODE_STATES = {"starttaskfailed", "unusable"}


def _wire(value: object) -> str:
    return "" if value is None else str(getattr(value, "value", value)).lower()


def _clients(settings: Settings) -> tuple[BatchClient, BlobServiceClient]:
    if not (settings.batch_endpoint and settings.batch_account_name and settings.batch_account_key):
        raise SystemExit("set BATCHPIPE_BATCH_ENDPOINT, BATCHPIPE_BATCH_ACCOUNT_NAME and BATCHPIPE_BATCH_ACCOUNT_KEY")
    if settings.storage_connection_string is None:
        raise SystemExit("set BATCHPIPE_STORAGE_CONNECTION_STRING")
    batch = BatchClient(
        endpoint=settings.batch_endpoint,
        credential=AzureNamedKeyCredential(settings.batch_account_name, settings.batch_account_key.get_secret_value()),
    )
    blobs = BlobServiceClient.from_connection_string(settings.storage_connection_string.get_secret_value())
    return batch, blobs


def _choose_image(batch: BatchClient, wanted: str) -> Any:
    distro, _, version = wanted.lower().partition(":")
    for image in batch.list_supported_images(filter="osType eq 'linux'"):
        reference = image.image_reference
        where = f"{reference.offer} {reference.sku} {image.node_agent_sku_id}".lower()
        if distro in where and version.replace(".", "_") in where.replace(".", "_"):
            return image
    raise SystemExit(f"no supported image for {wanted}")


def _upload(blobs: BlobServiceClient, container: str, items: Sequence[InputFile]) -> None:
    client = blobs.get_container_client(container)

    def one(item: InputFile) -> None:
        with item.path.open("rb") as data:
            client.upload_blob(
                item.blob_name,
                data,
                overwrite=True,
                length=item.size,
                metadata={"sha256": item.sha256},
                content_settings=ContentSettings(content_type="text/plain; charset=utf-8"),
            )

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(one, items))


def _task_command(artifact: str, input_blob: str, settings: Settings, account: str, endpoint: str) -> str:
    """The tutorial's command line: the shell expands the shared directory, no secret in it (the SAS is in SAS_ENV)."""
    arguments = ["--filepath", input_blob, "--numwords", str(settings.num_words), "--storageaccount", account]
    arguments += ["--storagecontainer", settings.output_container, "--blob-endpoint", endpoint, "--sas-env", SAS_ENV]
    script = f'python3 "$AZ_BATCH_NODE_SHARED_DIR"/{shlex.quote(artifact)} ' + " ".join(map(shlex.quote, arguments))
    return f"/bin/sh -c {shlex.quote(script)}"


def _pool(settings: Settings, image: Any, artifact: str, artifact_url: str) -> batchmodels.BatchPoolCreateOptions:
    staging = (
        f'cp "$AZ_BATCH_TASK_WORKING_DIR"/{shlex.quote(artifact)} "$AZ_BATCH_NODE_SHARED_DIR"/ && '
        f'python3 "$AZ_BATCH_NODE_SHARED_DIR"/{shlex.quote(artifact)} --version'
    )
    reference = image.image_reference
    return batchmodels.BatchPoolCreateOptions(
        id=settings.pool_id,
        vm_size=settings.vm_size,
        virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
            image_reference=batchmodels.BatchVmImageReference(
                publisher=reference.publisher, offer=reference.offer, sku=reference.sku, version=reference.version
            ),
            node_agent_sku_id=image.node_agent_sku_id,
        ),
        target_dedicated_nodes=settings.node_count,
        task_slots_per_node=settings.task_slots_per_node,
        start_task=batchmodels.BatchStartTask(
            command_line=f"/bin/sh -c {shlex.quote(staging)}",
            resource_files=[batchmodels.ResourceFile(http_url=artifact_url, file_path=artifact)],
            wait_for_success=True,
            max_task_retry_count=1,
            user_identity=batchmodels.UserIdentity(
                auto_user=batchmodels.AutoUserSpecification(scope="pool", elevation_level="nonadmin")
            ),
        ),
    )


def _wait(batch: BatchClient, settings: Settings, job_id: str, expected: int) -> Any:
    """Poll like tasks/monitoring.py: task counts, plus the node list while tasks are outstanding; 1.5x backoff."""
    wait, last = settings.poll_interval, None
    deadline = time.monotonic() + settings.monitor_timeout
    while True:
        counts = batch.get_job_task_counts(job_id).task_counts
        snapshot = (counts.active, counts.running, counts.completed)
        if counts.completed >= expected and counts.active == 0 and counts.running == 0:
            return counts
        nodes = batch.list_nodes(settings.pool_id, select=["id", "state", "startTaskInfo"])
        if any(_wire(node.state) in BROKEN_NODE_STATES for node in nodes):
            raise SystemExit("a node cannot run tasks")
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        wait = settings.poll_interval if snapshot != last else min(settings.max_poll_interval, wait * 1.5)
        last = snapshot
        time.sleep(wait)


def _download(blobs: BlobServiceClient, container: str, names: Sequence[str], out_dir: Path) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(name: str) -> bool:
        """Like tasks/storage.py: stream to a partial file, fsync, check size and Content-MD5, then rename."""
        downloader = blobs.get_blob_client(container, name).download_blob()
        partial, md5, size = out_dir / f".{name}.partial", hashlib.md5(usedforsecurity=False), 0
        with partial.open("wb") as handle:
            for chunk in downloader.chunks():
                handle.write(chunk)
                md5.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        expected_md5 = downloader.properties.content_settings.content_md5
        if size != downloader.properties.size or (expected_md5 and bytes(expected_md5) != md5.digest()):
            partial.unlink()
            return False
        partial.replace(out_dir / name)
        return True

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        return sum(pool.map(one, names))


def run(input_dir: Path, output_dir: Path, build_dir: Path) -> dict[str, Any]:
    """Run every step once; return the counts, the elapsed time and the time per phase.

    Args:
        input_dir: the input files.
        output_dir: where verified outputs go (a subdirectory per job).
        build_dir: where the node application is built.

    Returns:
        a summary.
    """
    started = time.perf_counter()
    phases: dict[str, float] = {}
    mark = started

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 3)
        mark = now

    settings = load_settings()
    batch, blobs = _clients(settings)
    files = resolve_inputs([str(input_dir)])
    job_id = job_id_for(files, settings.num_words, settings.pool_id)
    artifact_path = build_package(build_dir)
    app = InputFile(artifact_path, artifact_path.name, file_sha256(artifact_path), artifact_path.stat().st_size)
    image = _choose_image(batch, settings.image)
    phase("prepare")

    containers = [settings.application_container, settings.input_container, settings.output_container]
    for name in containers:
        with contextlib.suppress(ResourceExistsError):
            blobs.create_container(name)
    _upload(blobs, settings.application_container, [app])
    _upload(blobs, settings.input_container, files)
    phase("upload")

    account_key = blobs.credential.account_key
    lifetime = timedelta(seconds=settings.monitor_timeout + 1800)
    signer = SasSigner.for_client(blobs, lifetime, account_key)
    base = blobs.url.rstrip("/")
    app_url = with_token(
        f"{base}/{settings.application_container}/{app.blob_name}",
        signer.blob_read_token(settings.application_container, app.blob_name),
    )
    output_sas = signer.container_write_token(settings.output_container)
    specs = [
        {
            "task_id": task_id_for(item),
            "input_blob": item.blob_name,
            "input_url": with_token(
                f"{base}/{settings.input_container}/{item.blob_name}",
                signer.blob_read_token(settings.input_container, item.blob_name),
            ),
            "output_blob": output_blob_name(item.blob_name),
        }
        for item in files
    ]
    with contextlib.suppress(ResourceExistsError):
        batch.create_pool(_pool(settings, image, app.blob_name, app_url))
    batch.create_job(
        batchmodels.BatchJobCreateOptions(
            id=job_id,
            pool_info=batchmodels.BatchPoolInfo(pool_id=settings.pool_id),
            constraints=batchmodels.BatchJobConstraints(
                max_wall_clock_time=timedelta(seconds=settings.monitor_timeout + settings.pool_ready_timeout)
            ),
        )
    )
    existing = {t.id for t in batch.list_tasks(job_id, select=["id"])}
    tasks = [
        batchmodels.BatchTaskCreateOptions(
            id=spec["task_id"],
            display_name=f"top {settings.num_words} words of {spec['input_blob']}",
            command_line=_task_command(app.blob_name, spec["input_blob"], settings, str(blobs.account_name), base),
            resource_files=[batchmodels.ResourceFile(http_url=spec["input_url"], file_path=spec["input_blob"])],
            environment_settings=[batchmodels.EnvironmentSetting(name=SAS_ENV, value=output_sas)],
            constraints=batchmodels.BatchTaskConstraints(
                max_task_retry_count=settings.max_task_retries,
                max_wall_clock_time=timedelta(seconds=settings.monitor_timeout),
            ),
        )
        for spec in specs
        if spec["task_id"] not in existing
    ]
    batch.create_tasks(job_id, tasks, max_concurrency=SUBMIT_CONCURRENCY)
    phase("submit")

    counts = _wait(batch, settings, job_id, len(specs))
    phase("monitor")
    verified = _download(blobs, settings.output_container, [s["output_blob"] for s in specs], output_dir / job_id)
    phase("download")

    if counts.failed == 0 and verified == len(specs):
        for name in containers:
            with contextlib.suppress(ResourceNotFoundError):
                blobs.delete_container(name)
    batch.begin_delete_job(job_id, polling_interval=1).result()
    batch.begin_delete_pool(settings.pool_id, polling_interval=1).result()
    phase("cleanup")
    batch.close()
    blobs.close()
    return {
        "elapsed_s": round(time.perf_counter() - started, 3),
        "tasks": len(specs),
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "outputs": verified,
        "phases": phases,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``plain_sdk_pipeline.py INPUT_DIR --output-dir OUT [--build-dir DIR] [--local-stack DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    parser.add_argument("--build-dir", type=Path, default=Path(".batchpipe/build"))
    parser.add_argument(
        "--local-stack",
        type=Path,
        metavar="STATE_DIR",
        help="start Azurite and the local Batch service, like `batchpipe run`",
    )
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.local_stack:
            from batchpipe.local import environment, local_stack

            endpoints = stack.enter_context(local_stack(args.local_stack))
            stack.enter_context(environment(endpoints.environment()))
        summary = run(args.input_dir, args.output_dir.resolve(), args.build_dir.resolve())
    print(json.dumps(summary))
    return 0 if summary["failed"] == 0 and summary["outputs"] == summary["tasks"] else 1


if __name__ == "__main__":
    sys.exit(main())
