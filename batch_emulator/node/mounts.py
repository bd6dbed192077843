"""Pool mounts on an emulated node: blob containers are materialised, other file systems fail the node.

``azureBlobFileSystemConfiguration`` has no blobfuse here: when the node boots, every blob of the container
is downloaded under ``$AZ_BATCH_NODE_MOUNTS_DIR/<relativeMountPath>`` (a copy; files written there are not
uploaded back). The blob endpoint is ``https://<accountName>.blob.core.windows.net`` unless the entry names
another with the emulator's extra ``blobEndpoint`` property (for Azurite:
``http://127.0.0.1:10000/devstoreaccount1``). ``sasKey`` is used as given; ``accountKey`` signs a read/list SAS.
With the service's ``storage_endpoint`` option, a production blob host is reached there
(:func:`batch_emulator.node.transfer.map_storage_url`), as resource files are.
NFS, CIFS and Azure Files mounts need kernel mounts and remote servers, so a node asked for one goes
``unusable`` with a ``MountConfigurationError`` saying so.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from batch_emulator.node.resources import download_resource_files
from batch_emulator.node.transfer import map_storage_url

MOUNT_ERROR_CODE = "MountConfigurationError"
BLOB_MOUNT = "azureBlobFileSystemConfiguration"
#: Mount kinds the emulator cannot provide, with the reason shown in the node error.
UNSUPPORTED_MOUNTS = {
    "nfsMountConfiguration": "NFS mounts need a kernel mount of a remote NFS server",
    "cifsMountConfiguration": "CIFS/SMB mounts need a kernel mount of a remote SMB share",
    "azureFileShareConfiguration": "Azure Files mounts need a kernel SMB mount of an Azure file share",
}
_SAS_LIFETIME = timedelta(hours=1)


def mount_error(name: str, message: str) -> dict[str, Any]:
    """A node ``errors[]`` entry for a failed mount."""
    return {
        "code": MOUNT_ERROR_CODE,
        "message": message,
        "errorDetails": [{"name": "MountConfigurationName", "value": name}, {"name": "Message", "value": message}],
    }


def container_url(config: dict[str, Any], storage_endpoint: str | None = None) -> str:
    """The SAS URL of the container a blob mount names (``blobEndpoint`` overrides the public endpoint).

    Args:
        config: The mount's ``azureBlobFileSystemConfiguration``.
        storage_endpoint: Where production blob hosts are reached (the service option), or None.

    Raises:
        ValueError: neither ``sasKey`` nor ``accountKey`` is given.
    """
    account = str(config["accountName"])
    container = str(config["containerName"])
    endpoint = str(config.get("blobEndpoint") or f"https://{account}.blob.core.windows.net").rstrip("/")
    sas = str(config.get("sasKey") or "").lstrip("?")
    if not sas and config.get("accountKey"):
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            account,
            container,
            account_key=str(config["accountKey"]),
            permission=ContainerSasPermissions(read=True, list=True),
            expiry=datetime.now(UTC) + _SAS_LIFETIME,
        )
    if not sas:
        raise ValueError("a blob mount needs sasKey or accountKey (identityReference is not supported locally)")
    return map_storage_url(f"{endpoint}/{container}?{sas}", storage_endpoint)


def _mount_blob(
    config: dict[str, Any], mounts_dir: Path, cancel: threading.Event, storage_endpoint: str | None
) -> dict[str, Any] | None:
    relative = str(config.get("relativeMountPath") or "").strip("/")
    name = relative or str(config.get("containerName", ""))
    try:
        url = container_url(config, storage_endpoint)
    except (KeyError, ValueError) as error:
        return mount_error(name, f"The blob mount {name!r} cannot be made: {error}")
    mounts_dir.mkdir(parents=True, exist_ok=True)
    resource = {"storageContainerUrl": url, "filePath": relative}
    failure = download_resource_files([resource], mounts_dir, cancel)
    if failure is None:
        return None
    return mount_error(name, f"Materialising the blob mount {name!r} failed: {failure.get('message', '')}")


def mount_all(
    mounts: list[dict[str, Any]], mounts_dir: Path, cancel: threading.Event, storage_endpoint: str | None = None
) -> list[dict[str, Any]]:
    """Provide every mount of a pool's ``mountConfiguration`` under ``mounts_dir``.

    Args:
        mounts: The wire ``mountConfiguration`` list.
        mounts_dir: The node's ``fsmounts`` directory (``AZ_BATCH_NODE_MOUNTS_DIR``).
        cancel: Stops retry back-offs early.
        storage_endpoint: Where production blob hosts are reached (the service option), or None.

    Returns:
        The node errors (empty when every mount is in place).
    """
    errors: list[dict[str, Any]] = []
    for entry in mounts:
        for kind, reason in UNSUPPORTED_MOUNTS.items():
            config = entry.get(kind)
            if config:
                name = str(config.get("relativeMountPath") or kind)
                errors.append(mount_error(name, f"{kind} cannot be mounted by the local Batch service: {reason}."))
        blob = entry.get(BLOB_MOUNT)
        if blob:
            error = _mount_blob(blob, mounts_dir, cancel, storage_endpoint)
            if error is not None:
                errors.append(error)
    return errors
