"""Node service logs uploaded into Azurite, blob mounts materialised from Azurite, and mounts that fail a node."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.batch.models import _models as sdk_models  # the reimage options are not re-exported
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient, ContainerSasPermissions, generate_container_sas

from batch_emulator.server import ThreadedEmulator
from batchpipe.services import AzuriteInfo


def _sas(azurite: AzuriteInfo, container: ContainerClient, permission: ContainerSasPermissions) -> str:
    return generate_container_sas(
        azurite.account_name,
        container.container_name,
        account_key=azurite.account_key,
        permission=permission,
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )


def _blob_mount(
    azurite: AzuriteInfo, container: ContainerClient, path: str, **credential: str
) -> batch_models.MountConfiguration:
    blob_mount = batch_models.AzureBlobFileSystemConfiguration(
        account_name=azurite.account_name,
        container_name=container.container_name,
        relative_mount_path=path,
        **credential,
    )
    blob_mount["blobEndpoint"] = azurite.blob_endpoint  # the emulator's endpoint override (Azurite is path-style)
    return batch_models.MountConfiguration(azure_blob_file_system_configuration=blob_mount)


def test_upload_node_logs_puts_agent_and_start_task_logs_in_the_container(
    emulator: ThreadedEmulator, helpers: Any, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(
        command_line='/bin/sh -c "echo started; echo warned >&2"', wait_for_success=True
    )
    node_id = helpers.ready_pool(client, "logged-pool", nodes=1, start_task=start_task)[0].id
    sas = _sas(azurite, container, ContainerSasPermissions(write=True, create=True))
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    result = client.upload_node_logs(
        "logged-pool",
        node_id,
        batch_models.UploadBatchServiceLogsOptions(container_url=f"{container.url}?{sas}", start_time=since),
    )
    assert result.number_of_files_uploaded == 3
    assert result.virtual_directory_name.startswith(f"logged-pool/{node_id}/")
    names = sorted(blob.name for blob in container.list_blobs())
    prefix = result.virtual_directory_name
    assert names == [f"{prefix}/agent.log", f"{prefix}/startup/stderr.txt", f"{prefix}/startup/stdout.txt"]
    agent = container.download_blob(f"{prefix}/agent.log").readall().decode()
    assert "waitingforstarttask -> idle" in agent
    assert "start task completed: success, exit code 0" in agent
    assert container.download_blob(f"{prefix}/startup/stdout.txt").readall() == b"started\n"
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
    nothing_new = client.upload_node_logs(
        "logged-pool",
        node_id,
        batch_models.UploadBatchServiceLogsOptions(container_url=f"{container.url}?{sas}", start_time=later),
    )
    assert nothing_new.number_of_files_uploaded == 1  # the (empty) agent log only


def test_blob_mount_is_materialised_under_the_mounts_dir(
    emulator: ThreadedEmulator, helpers: Any, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    container.upload_blob("refs/genome.txt", b"ACGT\n")
    container.upload_blob("readme.txt", b"hello mount\n")
    client: BatchClient = helpers.make_client(emulator)
    sas = _sas(azurite, container, ContainerSasPermissions(read=True, list=True))
    mount = _blob_mount(azurite, container, "data", sas_key=sas)
    node_id = helpers.ready_pool(client, "mounted-pool", nodes=1, mount_configuration=[mount])[0].id
    client.create_job(
        batch_models.BatchJobCreateOptions(id="mount-job", pool_info=batch_models.BatchPoolInfo(pool_id="mounted-pool"))
    )
    command = (
        '/bin/sh -c "cat $AZ_BATCH_NODE_MOUNTS_DIR/data/refs/genome.txt $AZ_BATCH_NODE_MOUNTS_DIR/data/readme.txt"'
    )
    client.create_task("mount-job", batch_models.BatchTaskCreateOptions(id="reader", command_line=command))
    helpers.wait_for_tasks(client, "mount-job", 1)
    assert client.get_task("mount-job", "reader").execution_info.exit_code == 0
    assert b"".join(client.download_task_file("mount-job", "reader", "stdout.txt")) == b"ACGT\nhello mount\n"
    names = {item.name for item in client.list_node_files("mounted-pool", node_id, recursive=True)}
    assert "fsmounts/data/refs/genome.txt" in names
    container.upload_blob("added-later.txt", b"new\n")
    reimage = sdk_models.BatchNodeReimageOptions(node_reimage_option="requeue")
    client.begin_reimage_node("mounted-pool", node_id, reimage, polling_interval=0).result()
    helpers.wait_for_idle_nodes(client, "mounted-pool", 1)
    names = {item.name for item in client.list_node_files("mounted-pool", node_id, recursive=True)}
    assert {"fsmounts/data/refs/genome.txt", "fsmounts/data/added-later.txt"} <= names  # mounted again at boot


def test_mounts_that_cannot_be_made_locally_make_the_node_unusable(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    nfs = batch_models.NfsMountConfiguration(source="10.0.0.4:/exports/data", relative_mount_path="nfs")
    by_identity = batch_models.AzureBlobFileSystemConfiguration(
        account_name="someaccount",
        container_name="data",
        relative_mount_path="blob",
        identity_reference=batch_models.BatchNodeIdentityReference(resource_id="/subscriptions/x/identity"),
    )
    mounts = [
        batch_models.MountConfiguration(nfs_mount_configuration=nfs),
        batch_models.MountConfiguration(azure_blob_file_system_configuration=by_identity),
    ]
    client.create_pool(helpers.pool_options("nfs-pool", nodes=1, mount_configuration=mounts))

    def unusable() -> batch_models.BatchNode | None:
        nodes = list(client.list_nodes("nfs-pool"))
        return nodes[0] if nodes and nodes[0].state == "unusable" else None

    node = helpers.wait_until(unusable, what="unusable node")
    assert [error.code for error in node.errors] == ["MountConfigurationError", "MountConfigurationError"]
    assert "NFS" in node.errors[0].message
    assert "identityReference" in node.errors[1].message
    bad = helpers.pool_options("two-kinds-pool", nodes=0)
    bad.mount_configuration = [
        batch_models.MountConfiguration(
            nfs_mount_configuration=nfs,
            cifs_mount_configuration=batch_models.CifsMountConfiguration(
                username="u", source="//s/x", relative_mount_path="c", password="p"
            ),
        )
    ]
    with pytest.raises(HttpResponseError) as refused:
        client.create_pool(bad)
    assert (refused.value.status_code, refused.value.error.code) == (400, "InvalidPropertyValue")


def test_start_task_failure_is_a_node_error(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(command_line="/bin/false", wait_for_success=True)
    client.create_pool(helpers.pool_options("failing-pool", nodes=1, start_task=start_task))

    def failed() -> batch_models.BatchNode | None:
        nodes = list(client.list_nodes("failing-pool"))
        return nodes[0] if nodes and nodes[0].state == "starttaskfailed" else None

    node = helpers.wait_until(failed, what="starttaskfailed node")
    assert [error.code for error in node.errors] == ["FailureExitCode"]


def test_blob_mount_with_account_key_and_a_refused_log_upload(
    emulator: ThreadedEmulator, helpers: Any, azurite: AzuriteInfo, container: ContainerClient
) -> None:
    container.upload_blob("keyed.txt", b"signed with the key\n")
    client: BatchClient = helpers.make_client(emulator)
    mount = _blob_mount(azurite, container, "keyed", account_key=azurite.account_key)
    node_id = helpers.ready_pool(client, "keyed-pool", nodes=1, mount_configuration=[mount])[0].id
    mounted = b"".join(client.download_node_file("keyed-pool", node_id, "fsmounts/keyed/keyed.txt"))
    assert mounted == b"signed with the key\n"
    shown = client.get_pool("keyed-pool").mount_configuration[0].azure_blob_file_system_configuration
    assert (shown.relative_mount_path, shown.account_key) == ("keyed", None)  # the key is never returned
    read_only = _sas(azurite, container, ContainerSasPermissions(read=True))
    with pytest.raises(HttpResponseError) as refused:
        client.upload_node_logs(
            "keyed-pool",
            node_id,
            batch_models.UploadBatchServiceLogsOptions(
                container_url=f"{container.url}?{read_only}", start_time=datetime.datetime.now(datetime.UTC)
            ),
        )
    assert (refused.value.status_code, refused.value.error.code) == (400, "InvalidPropertyValue")
    signature = parse_qs(read_only)["sig"][0]
    assert signature not in str(refused.value)  # the SAS signature is never echoed
