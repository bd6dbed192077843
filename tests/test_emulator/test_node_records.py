"""Node records: endpoint ports, user records, the agent log, and what survives a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.models.account import Account
from batch_emulator.models.node_endpoints import inbound_endpoints, remote_login_port
from batch_emulator.models.node_users import create_node_user
from batch_emulator.models.nodes import Node
from batch_emulator.models.pools import Pool
from batch_emulator.node.service_logs import agent_log
from batch_emulator.server import EmulatorConfig, ThreadedEmulator


def _node(spec: dict[str, Any], number: int, account: Account | None = None) -> Node:
    pool = Pool("p", spec, 1, 2, 0.0)
    node = Node(f"tvmps_{number}_d", pool, number, dedicated=True, ip_address="10.0.0.4", now=0.0)
    node.number = number
    node.state = "idle"
    pool.nodes[node.id] = node
    if account is not None:
        account.pools[pool.key] = pool
    return node


def test_frontend_ports_wrap_inside_the_nat_range() -> None:
    nat = {"name": "Web", "protocol": "TCP", "backendPort": 80, "frontendPortRangeStart": 40000}
    spec = {
        "networkConfiguration": {"endpointConfiguration": {"inboundNATPools": [nat | {"frontendPortRangeEnd": 40002}]}}
    }
    ports = [inbound_endpoints(_node(spec, number))[0]["frontendPort"] for number in (1, 2, 3, 4)]
    assert ports == [40000, 40001, 40002, 40000]
    assert inbound_endpoints(_node(spec, 2))[0]["name"] == "Web.1"
    assert inbound_endpoints(_node(spec, 2))[0]["protocol"] == "tcp"
    assert remote_login_port(_node(spec, 3)) == 50002  # no NAT pool for port 22: Batch's default SSH range
    windows = {"virtualMachineConfiguration": {"nodeAgentSKUId": "batch.node.windows amd64"}}
    assert [(e["name"], e["backendPort"]) for e in inbound_endpoints(_node(windows, 1))] == [("RDPRule.0", 3389)]


def test_a_user_record_keeps_no_plaintext_password(tmp_path: Path) -> None:
    account = Account("acct", tmp_path)
    node = _node({}, 1, account)
    user = create_node_user(account, "p", node.id, {"name": "ops", "password": "hunter2"}, now=100.0)
    assert user.expiry_time == 100.0 + 24 * 3600
    saved = json.dumps(user.to_doc())
    assert "hunter2" not in saved
    assert user.password_sha256 is not None
    expired = create_node_user(account, "p", node.id, {"name": "ops"}, now=100.0 + 24 * 3600 + 1)
    assert expired.password_sha256 is None  # the expired account's name was free again


def test_agent_log_keeps_the_requested_time_range() -> None:
    events = [(10.0, "node state creating -> starting"), (20.0, "node state starting -> idle")]
    assert agent_log(events, 15.0, None).decode().endswith("node state starting -> idle\n")
    assert agent_log(events, 0.0, 15.0).count(b"\n") == 1
    assert agent_log(events, 30.0, None) == b""


def test_users_and_scheduling_state_survive_a_restart(tmp_path: Path, helpers: Any) -> None:
    config = EmulatorConfig(port=0, allocation_seconds=0.05, data_dir=tmp_path)
    user = batch_models.BatchNodeUserCreateOptions(name="keeper", password="x")
    with ThreadedEmulator(config) as first:
        client: BatchClient = helpers.make_client(first)
        node_id = helpers.ready_pool(client, "durable-pool", nodes=1)[0].id
        client.create_node_user("durable-pool", node_id, user)
        client.disable_node_scheduling(
            "durable-pool",
            node_id,
            batch_models.BatchNodeDisableSchedulingOptions(node_disable_scheduling_option="requeue"),
        )
        port = client.get_node_remote_login_settings("durable-pool", node_id).remote_login_port
    with ThreadedEmulator(config) as second:
        client = helpers.make_client(second)
        assert client.get_node("durable-pool", node_id).scheduling_state == "disabled"
        assert client.get_node_remote_login_settings("durable-pool", node_id).remote_login_port == port
        with pytest.raises(HttpResponseError) as exists:
            client.create_node_user("durable-pool", node_id, user)
        assert exists.value.error.code == "NodeUserExists"
