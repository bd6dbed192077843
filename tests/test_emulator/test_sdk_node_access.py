"""Node users, remote login, inbound endpoints and VM extensions through the unmodified azure-batch 15 SDK."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import ThreadedEmulator

KEYVAULT_EXTENSION = batch_models.VMExtension(
    name="secretext",
    publisher="Microsoft.Azure.KeyVault",
    type="KeyVaultForLinux",
    type_handler_version="1.0",
    auto_upgrade_minor_version=True,
    protected_settings={"secret": "not-for-your-eyes"},
)


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    return helpers.make_client(emulator)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def two_nodes(client: BatchClient, helpers: Any) -> list[str]:
    options = helpers.pool_options("access-pool", nodes=2)
    options.virtual_machine_configuration.extensions = [KEYVAULT_EXTENSION]
    client.create_pool(options)
    nodes = helpers.wait_for_idle_nodes(client, "access-pool", 2)
    return sorted((node.id for node in nodes), key=lambda node_id: client.get_node("access-pool", node_id).ip_address)


def test_user_lifecycle_and_errors(client: BatchClient, two_nodes: list[str]) -> None:
    node_id = two_nodes[0]
    expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2)
    user = batch_models.BatchNodeUserCreateOptions(
        name="operator", is_admin=True, password="s3cret!", expiry_time=expiry, ssh_public_key="ssh-rsa AAAA op"
    )
    client.create_node_user("access-pool", node_id, user)
    with pytest.raises(HttpResponseError) as exists:
        client.create_node_user("access-pool", node_id, user)
    assert (exists.value.status_code, exists.value.error.code) == (409, "NodeUserExists")
    # Users belong to one node: the other node has none of that name.
    with pytest.raises(HttpResponseError) as elsewhere:
        client.delete_node_user("access-pool", two_nodes[1], "operator")
    assert (elsewhere.value.status_code, elsewhere.value.error.code) == (404, "NodeUserNotFound")
    client.replace_node_user(
        "access-pool", node_id, "operator", batch_models.BatchNodeUserReplaceOptions(password="n3w-secret")
    )
    client.delete_node_user("access-pool", node_id, "operator")
    with pytest.raises(HttpResponseError) as gone:
        client.replace_node_user(
            "access-pool", node_id, "operator", batch_models.BatchNodeUserReplaceOptions(password="x")
        )
    assert (gone.value.status_code, gone.value.error.code) == (404, "NodeUserNotFound")


def test_invalid_user_name_is_refused(client: BatchClient, two_nodes: list[str]) -> None:
    with pytest.raises(HttpResponseError) as bad:
        client.create_node_user(
            "access-pool", two_nodes[0], batch_models.BatchNodeUserCreateOptions(name="no spaces", password="x")
        )
    assert (bad.value.status_code, bad.value.error.code) == (400, "InvalidPropertyValue")


def test_remote_login_is_loopback_on_a_stable_port_per_node(client: BatchClient, two_nodes: list[str]) -> None:
    settings = [client.get_node_remote_login_settings("access-pool", node_id) for node_id in two_nodes]
    assert [item.remote_login_ip_address for item in settings] == ["127.0.0.1", "127.0.0.1"]
    assert sorted(item.remote_login_port for item in settings) == [50000, 50001]
    again = client.get_node_remote_login_settings("access-pool", two_nodes[0])
    assert again.remote_login_port == settings[0].remote_login_port
    endpoints = client.get_node("access-pool", two_nodes[0]).endpoint_configuration.inbound_endpoints
    assert [(e.protocol, e.backend_port, e.frontend_port) for e in endpoints] == [
        ("tcp", 22, settings[0].remote_login_port)
    ]


def test_inbound_nat_pools_are_echoed_and_give_node_endpoints(client: BatchClient, helpers: Any) -> None:
    nat_pool = batch_models.BatchInboundNatPool(
        name="AppEndpoint",
        protocol="tcp",
        backend_port=8080,
        frontend_port_range_start=60000,
        frontend_port_range_end=60099,
    )
    ssh_pool = batch_models.BatchInboundNatPool(
        name="Ssh", protocol="tcp", backend_port=22, frontend_port_range_start=61000, frontend_port_range_end=61099
    )
    options = helpers.pool_options("nat-pool", nodes=1)
    options.network_configuration = batch_models.NetworkConfiguration(
        endpoint_configuration=batch_models.BatchPoolEndpointConfiguration(inbound_nat_pools=[nat_pool, ssh_pool])
    )
    client.create_pool(options)
    echoed = client.get_pool("nat-pool").network_configuration.endpoint_configuration.inbound_nat_pools
    assert [(item.name, item.frontend_port_range_start) for item in echoed] == [("AppEndpoint", 60000), ("Ssh", 61000)]
    node = helpers.wait_for_idle_nodes(client, "nat-pool", 1)[0]
    endpoints = {e.name: (e.frontend_port, e.backend_port) for e in node.endpoint_configuration.inbound_endpoints}
    assert endpoints == {"AppEndpoint.0": (60000, 8080), "Ssh.0": (61000, 22)}
    assert client.get_node_remote_login_settings("nat-pool", node.id).remote_login_port == 61000
    bad = helpers.pool_options("bad-nat-pool", nodes=0)
    bad.network_configuration = batch_models.NetworkConfiguration(
        endpoint_configuration=batch_models.BatchPoolEndpointConfiguration(
            inbound_nat_pools=[
                batch_models.BatchInboundNatPool(
                    name="Backwards",
                    protocol="tcp",
                    backend_port=80,
                    frontend_port_range_start=60100,
                    frontend_port_range_end=60000,
                )
            ]
        )
    )
    with pytest.raises(HttpResponseError) as refused:
        client.create_pool(bad)
    assert (refused.value.status_code, refused.value.error.code) == (400, "InvalidPropertyValue")


def test_extensions_are_the_pools_and_batchs_own(client: BatchClient, two_nodes: list[str]) -> None:
    extensions = list(client.list_node_extensions("access-pool", two_nodes[0]))
    names = [item.vm_extension.name for item in extensions]
    assert names == ["secretext", "batchNodeExtension"]
    assert {item.provisioning_state for item in extensions} == {"Succeeded"}
    found = client.get_node_extension("access-pool", two_nodes[0], "secretext")
    assert found.vm_extension.publisher == "Microsoft.Azure.KeyVault"
    assert found.vm_extension.protected_settings is None  # secrets are never shown
    pool_extensions = client.get_pool("access-pool").virtual_machine_configuration.extensions
    assert [(item.name, item.protected_settings) for item in pool_extensions] == [("secretext", None)]
    assert found.instance_view.statuses[0].code == "ProvisioningState/succeeded"
    with pytest.raises(HttpResponseError) as missing:
        client.get_node_extension("access-pool", two_nodes[0], "nosuchext")
    assert missing.value.status_code == 404
