"""`batchpipe pools delete` and the pools commands' `--state-dir`, through the CLI against the local services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from azure.batch import BatchClient
from azure.batch import models as batchmodels
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from typer.testing import CliRunner

from batchpipe.cli import app
from batchpipe.local import LocalEndpoints

pytestmark = pytest.mark.integration


def _batch(endpoints: LocalEndpoints) -> BatchClient:
    credential = AzureNamedKeyCredential(endpoints.batch_account_name, endpoints.batch_account_key)
    return BatchClient(endpoint=endpoints.batch_url, credential=credential)


def test_pools_delete_asks_then_deletes_the_pool_and_names_a_missing_one(pipeline_env: LocalEndpoints) -> None:
    batch, pool_id = _batch(pipeline_env), os.environ["BATCHPIPE_POOL_ID"]
    image = batchmodels.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server")
    configuration = batchmodels.VirtualMachineConfiguration(
        image_reference=image, node_agent_sku_id="batch.node.ubuntu 24.04"
    )
    batch.create_pool(
        batchmodels.BatchPoolCreateOptions(
            id=pool_id, vm_size="standard_d2s_v3", virtual_machine_configuration=configuration, target_dedicated_nodes=0
        )
    )

    declined = CliRunner().invoke(app, ["pools", "delete", pool_id], input="n\n")
    assert declined.exit_code == 1
    assert batch.get_pool(pool_id).id == pool_id

    deleted = CliRunner().invoke(app, ["pools", "delete", pool_id, "--yes"])
    assert deleted.exit_code == 0, deleted.output
    assert f"Deleted pool {pool_id}" in deleted.output
    with pytest.raises(ResourceNotFoundError):
        batch.get_pool(pool_id)

    missing = CliRunner().invoke(app, ["pools", "delete", pool_id, "-y"])
    assert missing.exit_code != 0
    assert f"pool '{pool_id}' does not exist" in missing.output


def test_pools_list_starts_the_local_services_on_its_state_dir(tmp_path: Path) -> None:
    """Without running services, `pools list --state-dir DIR` starts them on DIR for the listing, then stops them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHPIPE_", "AZURE_", "PREFECT_"))}
    result = subprocess.run(
        [sys.executable, "-m", "batchpipe.cli", "pools", "list", "--state-dir", str(tmp_path / "state")],
        cwd=tmp_path,
        env=env | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "batchpipe pools" in result.stdout  # the (empty) table: the services answered
    assert {"azurite", "batch"} <= {p.name for p in (tmp_path / "state").iterdir()}  # their state is on DIR
    assert not (tmp_path / ".batchpipe").exists()  # the default state dir is not used
