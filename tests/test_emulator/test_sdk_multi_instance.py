"""Multi-instance tasks through the unmodified azure-batch 15 SDK."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import ThreadedEmulator

POOL, PLAIN_POOL = "mpi-pool", "mpi-plain-pool"
M = batch_models
COORDINATE = (
    "/bin/bash -c 'cat ../common.txt > $AZ_BATCH_TASK_SHARED_DIR/coordinated-$AZ_BATCH_NODE_ID;"
    " echo $AZ_BATCH_IS_CURRENT_NODE_MASTER >> $AZ_BATCH_TASK_SHARED_DIR/coordinated-$AZ_BATCH_NODE_ID'"
)
APPLICATION = (
    "/bin/bash -c 'echo $AZ_BATCH_NODE_ID; echo $AZ_BATCH_HOST_LIST; echo $AZ_BATCH_NODE_LIST;"
    " echo $AZ_BATCH_MASTER_NODE; echo $AZ_BATCH_IS_CURRENT_NODE_MASTER; cat $AZ_BATCH_TASK_SHARED_DIR/coordinated-*'"
)


class CommonFileHandler(BaseHTTPRequestHandler):
    """Serves the one common resource file."""

    def do_GET(self) -> None:
        body = b"common file\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def common_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), CommonFileHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/common.txt"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def client(emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    batch: BatchClient = helpers.make_client(emulator)
    batch.create_pool(helpers.pool_options(POOL, nodes=3, enable_inter_node_communication=True))
    batch.create_pool(helpers.pool_options(PLAIN_POOL, nodes=1))
    helpers.wait_for_idle_nodes(batch, POOL, 3)
    helpers.wait_for_idle_nodes(batch, PLAIN_POOL, 1)
    return batch


def new_job(client: BatchClient, job_id: str, pool_id: str = POOL) -> None:
    client.create_job(M.BatchJobCreateOptions(id=job_id, pool_info=M.BatchPoolInfo(pool_id=pool_id)))


def mpi_task(task_id: str, instances: int, common_url: str | None = None) -> M.BatchTaskCreateOptions:
    common = [M.ResourceFile(http_url=common_url, file_path="common.txt")] if common_url else None
    settings = M.MultiInstanceSettings(
        number_of_instances=instances, coordination_command_line=COORDINATE, common_resource_files=common
    )
    return M.BatchTaskCreateOptions(id=task_id, command_line=APPLICATION, multi_instance_settings=settings)


def test_primary_and_subtasks_run_on_distinct_nodes(client: BatchClient, common_url: str, helpers: Any) -> None:
    new_job(client, "mpi-job")
    client.create_task("mpi-job", mpi_task("mpi", 3, common_url))
    done = helpers.wait_until(
        lambda: (found := client.get_task("mpi-job", "mpi")).state == "completed" and found, what="mpi completed"
    )
    assert done.execution_info.result == "success", done.execution_info.failure_info
    primary = done.node_info.node_id
    subtasks = list(client.list_subtasks("mpi-job", "mpi"))
    assert [subtask.id for subtask in subtasks] == [1, 2]
    nodes = {node.id: node.ip_address for node in client.list_nodes(POOL)}
    assert {subtask.node_info.node_id for subtask in subtasks} == set(nodes) - {primary}
    for subtask in subtasks:
        assert (subtask.state, subtask.exit_code, subtask.result) == ("completed", 0, "success")
        assert subtask.node_info.pool_id == POOL
    lines = b"".join(client.download_task_file("mpi-job", "mpi", "stdout.txt")).decode().splitlines()
    node_id, hosts, node_list, master, is_master, *coordinated = lines
    assert node_id == primary
    assert sorted(hosts.split(",")) == sorted(nodes.values())
    assert node_list == hosts.replace(",", ";")
    assert master == f"{nodes[primary]}:6000"
    assert is_master == "true"
    assert sorted(coordinated) == sorted(["common file", "true", "common file", "false", "common file", "false"])


def test_on_a_pool_without_inter_node_communication_it_is_never_scheduled(client: BatchClient, helpers: Any) -> None:
    new_job(client, "mpi-plain-job", PLAIN_POOL)
    client.create_task("mpi-plain-job", mpi_task("mpi", 1))
    client.create_task("mpi-plain-job", M.BatchTaskCreateOptions(id="plain", command_line="/bin/true"))
    helpers.wait_until(lambda: client.get_task("mpi-plain-job", "plain").state == "completed", what="plain done")
    assert client.get_task("mpi-plain-job", "mpi").state == "active"


def test_a_multi_instance_task_must_require_one_slot(client: BatchClient) -> None:
    new_job(client, "mpi-slots-job")
    body = mpi_task("mpi", 2)
    body.required_slots = 2
    with pytest.raises(HttpResponseError) as caught:
        client.create_task("mpi-slots-job", body)
    assert caught.value.status_code == 400
    assert caught.value.error is not None
    assert caught.value.error.code == "InvalidPropertyValue"


def test_a_task_needing_more_nodes_than_the_pool_has_waits_without_blocking_others(
    client: BatchClient, helpers: Any
) -> None:
    new_job(client, "mpi-wide-job")
    client.create_task("mpi-wide-job", mpi_task("wide", 4))
    client.create_task("mpi-wide-job", M.BatchTaskCreateOptions(id="after", command_line="/bin/true"))
    helpers.wait_until(lambda: client.get_task("mpi-wide-job", "after").state == "completed", what="after completed")
    assert client.get_task("mpi-wide-job", "wide").state == "active"
    assert list(client.list_subtasks("mpi-wide-job", "wide")) == []


def test_a_failed_coordination_command_fails_the_task(client: BatchClient, helpers: Any) -> None:
    new_job(client, "mpi-fail-job")
    settings = M.MultiInstanceSettings(
        number_of_instances=2, coordination_command_line="/bin/bash -c 'test $AZ_BATCH_IS_CURRENT_NODE_MASTER = true'"
    )
    client.create_task(
        "mpi-fail-job",
        M.BatchTaskCreateOptions(id="mpi", command_line="/bin/true", multi_instance_settings=settings),
    )
    done = helpers.wait_until(
        lambda: (found := client.get_task("mpi-fail-job", "mpi")).state == "completed" and found, what="completed"
    )
    assert (done.execution_info.result, done.execution_info.exit_code) == ("failure", 1)
    [subtask] = list(client.list_subtasks("mpi-fail-job", "mpi"))
    assert (subtask.id, subtask.exit_code, subtask.result) == (1, 1, "failure")
