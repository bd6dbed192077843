"""Build the SDK clients from the settings: the one place that knows endpoints and credentials.

The local target and the azure target differ only here: shared keys for Azurite and the local Batch service
(or, with ``BATCHPIPE_LOCAL_AUTH=entra``, tokens from a local development credential), shared keys or Entra ID
(``DefaultAzureCredential``) for Azure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential, TokenCredential
from azure.mgmt.batch import BatchManagementClient
from azure.storage.blob import BlobServiceClient

from batchpipe.errors import ConfigurationError
from batchpipe.services import check_services
from batchpipe.settings import ENV_PREFIX, Settings


def _services_alive(request: Any) -> None:
    """Before every attempt of every request: fail at once if a local service this process started has died
    (:func:`~batchpipe.services.check_services`), instead of retrying against it."""
    check_services()


# Client-side limits: fail a dead endpoint in seconds, not the SDK default of 5 minutes per attempt. The hook runs
# once per attempt (after the retry policy), so the SDK's own retries stop too when a local service is gone.
_TRANSPORT_OPTIONS: dict[str, Any] = {
    "connection_timeout": 20,
    "read_timeout": 120,
    "retry_total": 4,
    "raw_request_hook": _services_alive,
}


def _token_credential(settings: Settings) -> TokenCredential:
    if settings.target == "local" and settings.local_auth == "entra":
        from batchpipe.local_identity import LocalDevelopmentCredential

        return LocalDevelopmentCredential()
    from azure.identity import DefaultAzureCredential

    # Interactive browser sign-in would hang a non-interactive run; everything else stays available.
    credential: TokenCredential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return credential


def uses_entra_id_for_storage(settings: Settings) -> bool:
    """True when Storage is reached with Entra ID (so SAS must be user-delegation SAS)."""
    return settings.storage_connection_string is None and settings.storage_account_key is None


def blob_service_client(settings: Settings) -> BlobServiceClient:
    """Return a Blob service client for the configured Storage account.

    Args:
        settings: the run's settings (connection string, or account URL with a key or Entra ID).

    Returns:
        A ``BlobServiceClient``.

    Raises:
        ConfigurationError: no Storage account is configured.
    """
    if settings.storage_connection_string is not None:
        return BlobServiceClient.from_connection_string(
            settings.storage_connection_string.get_secret_value(), **_TRANSPORT_OPTIONS
        )
    if not settings.storage_account_url:
        raise ConfigurationError(
            f"no Storage account configured: set {ENV_PREFIX}STORAGE_ACCOUNT_URL "
            f"or {ENV_PREFIX}STORAGE_CONNECTION_STRING"
        )
    if settings.storage_account_key is not None:
        name = settings.storage_account_name or _account_from_blob_url(settings.storage_account_url)
        credential: Any = {"account_name": name, "account_key": settings.storage_account_key.get_secret_value()}
    else:
        credential = _token_credential(settings)
    return BlobServiceClient(settings.storage_account_url, credential=credential, **_TRANSPORT_OPTIONS)


def batch_client(settings: Settings) -> BatchClient:
    """Return a Batch client for the configured Batch account.

    Args:
        settings: the run's settings (endpoint, and an account name and key, or Entra ID).

    Returns:
        An ``azure.batch.BatchClient``.

    Raises:
        ConfigurationError: the Batch endpoint is not configured.
    """
    if not settings.batch_endpoint:
        raise ConfigurationError(f"no Batch endpoint configured: set {ENV_PREFIX}BATCH_ENDPOINT")
    credential: AzureNamedKeyCredential | TokenCredential
    if settings.batch_account_key is not None:
        name = settings.batch_account_name or _account_from_batch_url(settings.batch_endpoint)
        credential = AzureNamedKeyCredential(name, settings.batch_account_key.get_secret_value())
    else:
        credential = _token_credential(settings)
    return BatchClient(endpoint=settings.batch_endpoint, credential=credential, **_TRANSPORT_OPTIONS)


def storage_account_name(settings: Settings, client: BlobServiceClient) -> str:
    """The Storage account's name (needed on the node to address the output container)."""
    return str(client.account_name or settings.storage_account_name or "")


def _account_from_blob_url(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith(("127.", "localhost")):  # Azurite style: http://127.0.0.1:10000/<account>
        return url.rstrip("/").rsplit("/", 1)[-1]
    return host.split(".", 1)[0]


def _account_from_batch_url(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    if host.startswith(("127.", "localhost")):
        raise ConfigurationError(f"set {ENV_PREFIX}BATCH_ACCOUNT_NAME for a Batch endpoint on {host}")
    return host.split(".", 1)[0]


#: Azure Resource Manager, where the Batch management plane (quotas, VM sizes) lives.
MANAGEMENT_ENDPOINT = "https://management.azure.com"
#: The local Batch service serves its account in any subscription and resource group; this subscription is named.
LOCAL_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class ManagementTarget:
    """Where the Batch account is on the management plane."""

    endpoint: str
    subscription_id: str
    resource_group: str
    account_name: str

    @property
    def call_options(self) -> dict[str, Any]:
        """Per-call SDK options: Bearer tokens over http only for a loopback endpoint (the local key mode)."""
        return {"enforce_https": False} if self.endpoint.startswith("http://") else {}


def management_target(settings: Settings) -> ManagementTarget | None:
    """The Batch account's place on the management plane, or None when the settings do not say.

    The local target needs no settings: the local Batch service serves the management plane at its own URL.
    On Azure, ``BATCHPIPE_ARM_SUBSCRIPTION_ID`` and ``BATCHPIPE_ARM_RESOURCE_GROUP`` are needed; the account name
    comes from ``BATCHPIPE_ARM_ACCOUNT_NAME``, ``BATCHPIPE_BATCH_ACCOUNT_NAME`` or the Batch endpoint.
    """
    if settings.target == "local" and not settings.arm_subscription_id:
        if not settings.batch_endpoint:
            return None
        from batch_emulator.arm.models import DEFAULT_RESOURCE_GROUP
        from batch_emulator.config import DEFAULT_ACCOUNT_NAME

        return ManagementTarget(
            settings.arm_endpoint or settings.batch_endpoint,
            LOCAL_SUBSCRIPTION_ID,
            settings.arm_resource_group or DEFAULT_RESOURCE_GROUP,
            settings.arm_account_name or settings.batch_account_name or DEFAULT_ACCOUNT_NAME,
        )
    if not (settings.arm_subscription_id and settings.arm_resource_group):
        return None
    account = settings.arm_account_name or settings.batch_account_name
    if not account and settings.batch_endpoint:
        account = _account_from_batch_url(settings.batch_endpoint)
    if not account:
        return None
    return ManagementTarget(
        settings.arm_endpoint or MANAGEMENT_ENDPOINT, settings.arm_subscription_id, settings.arm_resource_group, account
    )


def management_client(settings: Settings, target: ManagementTarget) -> BatchManagementClient:
    """An ``azure-mgmt-batch`` client for the target (Entra ID tokens; the local development credential locally).

    Args:
        settings: the run's settings (which credential).
        target: where the account is (:func:`management_target`).

    Returns:
        A ``BatchManagementClient`` whose ``base_url`` is the target's endpoint.
    """
    credential: TokenCredential
    if settings.target == "local":
        from batchpipe.local_identity import LocalDevelopmentCredential

        credential = LocalDevelopmentCredential()
    else:
        credential = _token_credential(settings)
    return BatchManagementClient(credential, target.subscription_id, base_url=target.endpoint, **_TRANSPORT_OPTIONS)
