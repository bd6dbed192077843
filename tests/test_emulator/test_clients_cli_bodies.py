"""Bodies as the Azure CLI 2.91 sends them (``az batch ... reset --json-file``), in the normal suite.

The CLI drives the data plane with azure-batch 15.0.0b1 at api-version ``2024-02-01.19.0``; the slow test
``test_clients_azure_cli.py`` runs the real CLI. Here azure-batch 15 sends the same bodies at that api-version.
``az batch pool reset`` sends empty lists for what the file leaves out (``"metadata": []``): an empty list
removes the metadata, and the service then shows none, as it shows no ``applicationPackageReferences``
after an update with an empty list (Microsoft's ``update_pools`` recording).
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.credentials import AzureNamedKeyCredential

from batch_emulator.server import ThreadedEmulator

pytestmark = pytest.mark.integration
CLI_API_VERSION = "2024-02-01.19.0"


@pytest.fixture
def cli_client(emulator: ThreadedEmulator) -> Any:
    credential = AzureNamedKeyCredential(emulator.account_name, emulator.account_key)
    with BatchClient(emulator.url, credential, api_version=CLI_API_VERSION) as client:
        yield client


def test_pool_reset_with_empty_lists_removes_the_metadata(cli_client: BatchClient, helpers: Any) -> None:
    metadata = [batch_models.BatchMetadataItem(name="team", value="batchpipe")]
    cli_client.create_pool(helpers.pool_options("reset-pool", nodes=0, metadata=metadata))
    assert [item.name for item in cli_client.get_pool("reset-pool").metadata or []] == ["team"]
    update = {  # the CLI's own test data (batchUpdatePool.json), passed to the model as a mapping as the CLI does
        "startTask": {"commandLine": "/bin/sh -c 'echo updated'", "waitForSuccess": True},
        "certificateReferences": [],
        "metadata": [],
        "applicationPackageReferences": [],
    }
    cli_client.replace_pool_properties("reset-pool", batch_models.BatchPoolReplaceOptions(update))
    pool = cli_client.get_pool("reset-pool")
    assert pool.metadata is None
    assert pool.start_task is not None
    assert pool.start_task.command_line == "/bin/sh -c 'echo updated'"
    cli_client.update_pool("reset-pool", batch_models.BatchPoolUpdateOptions(metadata=metadata))
    assert [item.value for item in cli_client.get_pool("reset-pool").metadata or []] == ["batchpipe"]


def test_job_update_with_empty_metadata_removes_it(cli_client: BatchClient, helpers: Any) -> None:
    cli_client.create_pool(helpers.pool_options("job-reset-pool", nodes=0))
    cli_client.create_job(
        batch_models.BatchJobCreateOptions(
            id="reset-job",
            pool_info=batch_models.BatchPoolInfo(pool_id="job-reset-pool"),
            metadata=[batch_models.BatchMetadataItem(name="stage", value="one")],
        )
    )
    cli_client.update_job("reset-job", batch_models.BatchJobUpdateOptions(metadata=[]))
    assert cli_client.get_job("reset-job").metadata is None
