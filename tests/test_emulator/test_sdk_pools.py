"""Pools and nodes through azure-batch 15: allocation states, resize, start task failures, deletion."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from batch_emulator.server import EmulatorConfig, ThreadedEmulator


def test_resize_up_and_down(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    helpers.ready_pool(client, "resize-pool", nodes=1)
    client.begin_resize_pool(
        "resize-pool", batch_models.BatchPoolResizeOptions(target_dedicated_nodes=3), polling_interval=0
    ).result()
    pool = client.get_pool("resize-pool")
    assert (pool.allocation_state, pool.current_dedicated_nodes, pool.target_dedicated_nodes) == ("steady", 3, 3)
    helpers.wait_for_idle_nodes(client, "resize-pool", 3)
    client.begin_resize_pool(
        "resize-pool", batch_models.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=0
    ).result()
    assert len(list(client.list_nodes("resize-pool"))) == 1
    client.begin_delete_pool("resize-pool", polling_interval=0).result()


def test_failed_start_task_with_wait_for_success(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(
        command_line='/bin/bash -c "echo broken >&2; exit 7"', wait_for_success=True, max_task_retry_count=1
    )
    client.create_pool(helpers.pool_options("broken-pool", nodes=1, start_task=start_task))

    def failed() -> batch_models.BatchNode | None:
        nodes = list(client.list_nodes("broken-pool"))
        return nodes[0] if nodes and nodes[0].state == "starttaskfailed" else None

    node = helpers.wait_until(failed, what="starttaskfailed node")
    info = node.start_task_info
    assert (info.state, info.exit_code, info.result, info.retry_count) == ("completed", 7, "failure", 1)
    assert info.failure_info.code == "FailureExitCode"
    stderr = b"".join(client.download_node_file("broken-pool", node.id, "startup/stderr.txt"))
    assert stderr.endswith(b"broken\n")
    properties = client.get_node_file_properties("broken-pool", node.id, "startup/stderr.txt")
    assert int(properties.content_length) == len(stderr)
    names = {item.name for item in client.list_node_files("broken-pool", node.id, recursive=True)}
    assert {"startup/stdout.txt", "startup/stderr.txt", "shared", "workitems"} <= names


def test_tasks_do_not_run_on_a_node_whose_start_task_failed(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(command_line="/bin/false", wait_for_success=True)
    client.create_pool(helpers.pool_options("blocked-pool", nodes=1, start_task=start_task))
    helpers.wait_until(
        lambda: [node.state for node in client.list_nodes("blocked-pool")] == ["starttaskfailed"], what="failed node"
    )
    client.create_job(
        batch_models.BatchJobCreateOptions(
            id="blocked-job", pool_info=batch_models.BatchPoolInfo(pool_id="blocked-pool")
        )
    )
    client.create_task("blocked-job", batch_models.BatchTaskCreateOptions(id="t", command_line="/bin/true"))
    assert client.get_task("blocked-job", "t").state == "active"


def test_start_task_without_wait_for_success_leaves_the_node_idle(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    start_task = batch_models.BatchStartTask(command_line="/bin/false", wait_for_success=False)
    client.create_pool(helpers.pool_options("lenient-pool", nodes=1, start_task=start_task))
    node = helpers.wait_until(
        lambda: next(
            (
                n
                for n in client.list_nodes("lenient-pool")
                if n.start_task_info and n.start_task_info.state == "completed"
            ),
            None,
        ),
        what="start task completed",
    )
    assert node.state == "idle"
    assert node.start_task_info.result == "failure"


def test_deleting_a_pool_requeues_its_running_tasks(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    client.create_pool(helpers.pool_options("doomed-pool", nodes=1))
    client.create_job(
        batch_models.BatchJobCreateOptions(id="doomed-job", pool_info=batch_models.BatchPoolInfo(pool_id="doomed-pool"))
    )
    client.create_task("doomed-job", batch_models.BatchTaskCreateOptions(id="long", command_line="/bin/sleep 30"))
    helpers.wait_until(lambda: client.get_task("doomed-job", "long").state == "running", what="running task")
    client.begin_delete_pool("doomed-pool", polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_pool("doomed-pool")
    requeued = client.get_task("doomed-job", "long")
    assert requeued.state == "active"
    assert requeued.execution_info.requeue_count == 1


def test_node_states_during_slow_allocation(helpers: Any) -> None:
    config = EmulatorConfig(port=0, allocation_seconds=0.6)
    with ThreadedEmulator(config) as slow:
        client: BatchClient = helpers.make_client(slow)
        start_task = batch_models.BatchStartTask(command_line="/bin/sleep 0.4", wait_for_success=True)
        client.create_pool(helpers.pool_options("slow-pool", nodes=1, start_task=start_task))
        assert client.get_pool("slow-pool").allocation_state == "resizing"
        seen: list[str] = []

        def idle() -> bool:
            states = [node.state for node in client.list_nodes("slow-pool")]
            if states and (not seen or seen[-1] != states[0]):
                seen.append(states[0])
            return states == ["idle"]

        helpers.wait_until(idle, what="idle node")
        assert seen == ["creating", "starting", "waitingforstarttask", "idle"]
        assert client.get_pool("slow-pool").allocation_state == "steady"


def test_remove_named_nodes(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    nodes = helpers.ready_pool(client, "trim-pool", nodes=2)
    options = batch_models.BatchNodeRemoveOptions(node_ids=[nodes[0].id])
    client.begin_remove_nodes("trim-pool", options, polling_interval=0).result()
    pool = client.get_pool("trim-pool")
    assert (pool.target_dedicated_nodes, pool.current_dedicated_nodes) == (1, 1)
    assert [node.id for node in client.list_nodes("trim-pool")] == [nodes[1].id]
    client.begin_delete_pool("trim-pool", polling_interval=0).result()


def test_a_pool_update_with_one_bad_property_changes_nothing(emulator: ThreadedEmulator, helpers: Any) -> None:
    client: BatchClient = helpers.make_client(emulator)
    client.create_pool(helpers.pool_options("update-pool", nodes=0))
    before = client.get_pool("update-pool")
    # The SDK takes a JSON body too: a good start task and display name, and metadata that is not an array.
    update = {"startTask": {"commandLine": "echo new"}, "displayName": "renamed", "metadata": "owner=me"}

    with pytest.raises(HttpResponseError) as caught:
        client.update_pool("update-pool", update)

    assert caught.value.status_code == 400
    after = client.get_pool("update-pool")
    assert (after.start_task, after.display_name, after.etag) == (None, before.display_name, before.etag)
    metadata = [batch_models.BatchMetadataItem(name="owner", value="me")]
    client.update_pool("update-pool", batch_models.BatchPoolUpdateOptions(metadata=metadata))
    assert [(m.name, m.value) for m in client.get_pool("update-pool").metadata or []] == [("owner", "me")]
