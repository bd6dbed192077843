"""Fixtures for the management-plane tests: the local Batch service in its development Entra ID mode (https,
Bearer tokens) and the unmodified ``azure-mgmt-batch`` client with batchpipe's local development credential."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.mgmt.batch import BatchManagementClient

from batch_emulator.server import EmulatorConfig, ThreadedEmulator
from batchpipe.local_identity import LocalDevelopmentCredential, LocalTls, ensure_local_tls

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"


@pytest.fixture(scope="session")
def subscription_id() -> str:
    """The subscription the management client names (the local service answers for any)."""
    return SUBSCRIPTION


@pytest.fixture(scope="session")
def local_tls(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    """A local CA and a certificate for 127.0.0.1."""
    return ensure_local_tls(tmp_path_factory.mktemp("arm-tls"))


@pytest.fixture(scope="module")
def arm_emulator(local_tls: LocalTls) -> Iterator[ThreadedEmulator]:
    """One local Batch service per module, over https with Bearer tokens accepted (fast node allocation)."""
    config = EmulatorConfig(
        port=0,
        allocation_seconds=0.05,
        certfile=local_tls.cert_file,
        keyfile=local_tls.key_file,
        allow_bearer=True,
    )
    with ThreadedEmulator(config) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_service(arm_emulator: ThreadedEmulator) -> Iterator[None]:
    """Every test starts from an empty account with default quotas."""
    yield
    arm_emulator.service.reset()


def management_client(emulator: ThreadedEmulator, ca_file: Path, **options: Any) -> BatchManagementClient:
    """The unmodified management client, pointed at the local service with ``base_url``."""
    return BatchManagementClient(
        LocalDevelopmentCredential(),
        SUBSCRIPTION,
        base_url=emulator.url,
        connection_verify=str(ca_file),
        polling_interval=0,
        **options,
    )


@pytest.fixture
def mgmt(arm_emulator: ThreadedEmulator, local_tls: LocalTls) -> Iterator[BatchManagementClient]:
    """A management client for the module's service."""
    with management_client(arm_emulator, local_tls.ca_file) as client:
        yield client


@pytest.fixture
def data_plane(arm_emulator: ThreadedEmulator, local_tls: LocalTls) -> Iterator[BatchClient]:
    """An azure-batch client (shared key) for the same account."""
    credential = AzureNamedKeyCredential(arm_emulator.account_name, arm_emulator.account_key)
    with BatchClient(arm_emulator.url, credential, connection_verify=str(local_tls.ca_file)) as client:
        yield client
