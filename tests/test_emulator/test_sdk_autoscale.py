"""Pool autoscale through azure-batch 15: enable, evaluate, disable, periodic evaluation and the
service's error codes; the service runs 600 times faster (a 5-minute interval lasts 0.5 s)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import HttpResponseError

from batch_emulator.server import EmulatorConfig, ThreadedEmulator

RESULTS = "$TargetDedicatedNodes={};$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"


@pytest.fixture
def client(scaled_emulator: ThreadedEmulator, helpers: Any) -> BatchClient:
    client: BatchClient = helpers.make_client(scaled_emulator)
    return client


def autoscale_pool(pool_id: str, formula: str, interval: str = "PT5M") -> batch_models.BatchPoolCreateOptions:
    """An Ubuntu pool created with autoscale (no fixed targets, as the service requires)."""
    return batch_models.BatchPoolCreateOptions(
        id=pool_id,
        vm_size="standard_d2s_v3",
        virtual_machine_configuration=batch_models.VirtualMachineConfiguration(
            image_reference=batch_models.BatchVmImageReference(
                publisher="canonical", offer="0001-com-ubuntu-server-jammy", sku="22_04-lts", version="latest"
            ),
            node_agent_sku_id="batch.node.ubuntu 22.04",
        ),
        enable_auto_scale=True,
        auto_scale_formula=formula,
        auto_scale_evaluation_interval=interval,  # type: ignore[arg-type]  # the SDK sends the string as is
    )


def enable(client: BatchClient, pool_id: str, formula: str | None, interval: Any = None) -> None:
    client.enable_pool_auto_scale(
        pool_id,
        batch_models.BatchPoolEnableAutoScaleOptions(
            auto_scale_formula=formula, auto_scale_evaluation_interval=interval
        ),
    )


def evaluate(client: BatchClient, pool_id: str, formula: str) -> batch_models.AutoScaleRun:
    return client.evaluate_pool_auto_scale(
        pool_id, batch_models.BatchPoolEvaluateAutoScaleOptions(auto_scale_formula=formula)
    )


def error_of(call: Any) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value


def test_enable_evaluate_disable_as_recorded(client: BatchClient, helpers: Any) -> None:
    client.create_pool(helpers.pool_options("scaled", nodes=0))
    helpers.wait_until(lambda: client.get_pool("scaled").allocation_state == "steady", what="steady pool")
    enable(client, "scaled", "$TargetDedicatedNodes=2", "PT06M00S")

    pool = helpers.wait_until(
        lambda: (pool := client.get_pool("scaled")).current_dedicated_nodes == 2 and pool, what="2 nodes"
    )
    assert (pool.enable_auto_scale, pool.auto_scale_formula) == (True, "$TargetDedicatedNodes=2")
    assert pool.as_dict()["autoScaleEvaluationInterval"] == "PT6M"
    assert (
        pool.auto_scale_run.results
        == "$TargetDedicatedNodes=2;$TargetLowPriorityNodes=0;$NodeDeallocationOption=requeue"
    )
    assert pool.target_dedicated_nodes == 2

    run = evaluate(client, "scaled", "$TargetDedicatedNodes=3")
    assert run.results == RESULTS.format(3)
    assert run.error is None
    assert run.timestamp is not None
    assert client.get_pool("scaled").target_dedicated_nodes == 2  # evaluating never applies the formula

    client.disable_pool_auto_scale("scaled")
    pool = client.get_pool("scaled")
    assert (pool.enable_auto_scale, pool.auto_scale_formula, pool.auto_scale_run) == (False, None, None)
    assert pool.target_dedicated_nodes == 2  # disabling keeps the targets
    client.begin_resize_pool(
        "scaled", batch_models.BatchPoolResizeOptions(target_dedicated_nodes=0), polling_interval=0
    ).result()
    assert client.get_pool("scaled").current_dedicated_nodes == 0


def test_pool_follows_pending_tasks_between_evaluations(client: BatchClient, helpers: Any) -> None:
    formula = (
        "pending = max($PendingTasks.GetSample(1));\n"
        "$TargetDedicatedNodes = pending > 0 ? min(2, pending) : 0;\n"
        "$NodeDeallocationOption = taskcompletion;"
    )
    client.create_pool(autoscale_pool("follow", formula))
    first = helpers.wait_until(lambda: client.get_pool("follow").auto_scale_run, what="first evaluation")
    assert first.results.startswith("$TargetDedicatedNodes=0;")
    assert first.results.endswith(";pending=0")
    client.create_job(
        batch_models.BatchJobCreateOptions(id="follow-job", pool_info=batch_models.BatchPoolInfo(pool_id="follow"))
    )
    client.create_tasks(
        "follow-job",
        [batch_models.BatchTaskCreateOptions(id=f"t{index}", command_line="/bin/sleep 0.3") for index in range(3)],
    )
    helpers.wait_until(lambda: client.get_pool("follow").current_dedicated_nodes == 2, what="pool grown to 2")
    helpers.wait_for_tasks(client, "follow-job", 3)
    helpers.wait_until(lambda: client.get_pool("follow").current_dedicated_nodes == 0, what="pool shrunk to 0")
    assert "pending=0" in client.get_pool("follow").auto_scale_run.results


def test_formula_errors_come_back_in_the_run(client: BatchClient, helpers: Any) -> None:
    client.create_pool(autoscale_pool("errors", "$TargetDedicatedNodes = 0;"))
    syntax = evaluate(client, "errors", "$TargetDedicatedNodes = 1 +;").error
    assert syntax.code == "AutoScalingFormulaSyntaxError"
    assert syntax.error_values[0].name == "Message"
    assert syntax.error_values[0].value.startswith("Line 1, Col 28:")
    unknown = evaluate(client, "errors", "$TargetDedicatedNodes = median(1, 2);").error
    assert unknown.code == "AutoScalingFormulaSyntaxError"
    assert unknown.error_values[0].value == "Line 1, Col 25: unknown function median()"
    scarce = evaluate(client, "errors", "$TargetDedicatedNodes = avg($CPUPercent.GetSample(TimeInterval_Day, 100));")
    assert scarce.results is None
    assert scarce.error.code == "InsufficientSampleData"
    assert scarce.error.error_values[0].value.startswith("Line 1, Col 41: Insufficient data from data set: $CPUPercent")
    negative = evaluate(client, "errors", "$TargetDedicatedNodes = -1;").error
    assert negative.code == "InvalidAutoScalingSettings"


def test_wrong_states_and_bad_settings(client: BatchClient, scaled_emulator: ThreadedEmulator, helpers: Any) -> None:
    client.create_pool(helpers.pool_options("fixed", nodes=0))
    not_enabled = error_of(lambda: evaluate(client, "fixed", "$TargetDedicatedNodes = 1;"))
    assert (not_enabled.status_code, not_enabled.error.code) == (409, "OperationInvalidForCurrentState")
    helpers.wait_until(lambda: client.get_pool("fixed").allocation_state == "steady", what="steady pool")
    bad_formula = error_of(lambda: enable(client, "fixed", "$TargetDedicatedNodes = (1;"))
    assert (bad_formula.status_code, bad_formula.error.code) == (400, "AutoScalingFormulaSyntaxError")
    too_often = error_of(lambda: enable(client, "fixed", "$TargetDedicatedNodes = 1;", "PT1M"))
    assert (too_often.status_code, too_often.error.code) == (400, "InvalidPropertyValue")
    no_formula = error_of(lambda: enable(client, "fixed", None, "PT10M"))
    assert (no_formula.status_code, no_formula.error.code) == (400, "MissingRequiredProperty")

    enable(client, "fixed", "$TargetDedicatedNodes = 0;")
    resize = error_of(
        lambda: client.begin_resize_pool("fixed", batch_models.BatchPoolResizeOptions(target_dedicated_nodes=1))
    )
    assert (resize.status_code, resize.error.code) == (409, "OperationInvalidForCurrentState")
    enable(client, "fixed", None, "PT10M")  # an enabled pool takes a new interval alone
    assert client.get_pool("fixed").as_dict()["autoScaleEvaluationInterval"] == "PT10M"

    httpx.put(f"{scaled_emulator.url}/_emulator/faults", json={"spec": "slow_allocation=5s"}).raise_for_status()
    try:
        client.create_pool(helpers.pool_options("growing", nodes=1))
        resizing = error_of(lambda: enable(client, "growing", "$TargetDedicatedNodes = 1;"))
        assert (resizing.status_code, resizing.error.code) == (409, "PoolBeingResized")
    finally:
        httpx.put(f"{scaled_emulator.url}/_emulator/faults", json={"spec": ""}).raise_for_status()


def test_create_refuses_fixed_targets_with_autoscale(client: BatchClient) -> None:
    options = autoscale_pool("mixed", "$TargetDedicatedNodes = 1;")
    options.target_dedicated_nodes = 2
    refused = error_of(lambda: client.create_pool(options))
    assert (refused.status_code, refused.error.code) == (400, "InvalidPropertyValue")


@pytest.fixture(scope="module")
def thirty_fold() -> Iterator[ThreadedEmulator]:
    """A service 30 times faster than real time: 30 service seconds last 1 s."""
    with ThreadedEmulator(EmulatorConfig(port=0, allocation_seconds=0.05, time_scale=30)) as running:
        yield running


def test_a_second_enable_within_30_service_seconds_is_refused_until_retried(
    thirty_fold: ThreadedEmulator, helpers: Any
) -> None:
    client: BatchClient = helpers.make_client(thirty_fold)
    client.create_pool(helpers.pool_options("twice", nodes=0))
    helpers.wait_until(lambda: client.get_pool("twice").allocation_state == "steady", what="steady pool")
    enable(client, "twice", "$TargetDedicatedNodes = 0;")
    options = batch_models.BatchPoolEnableAutoScaleOptions(auto_scale_formula="$TargetDedicatedNodes = 1;")
    too_soon = error_of(lambda: client.enable_pool_auto_scale("twice", options, retry_total=0))
    assert (too_soon.status_code, too_soon.error.code) == (503, "TooManyEnableAutoScaleRequests")
    assert too_soon.error.message.startswith("Too many Enable Pool AutoScale requests are issued on the pool.")
    assert 0 < float(too_soon.response.headers["Retry-After"]) <= 1
    assert client.get_pool("twice").auto_scale_formula == "$TargetDedicatedNodes = 0;"  # nothing changed
    # The SDK retries a 503 after its Retry-After: with the default retry policy the same call succeeds.
    client.enable_pool_auto_scale("twice", options)
    assert client.get_pool("twice").auto_scale_formula == "$TargetDedicatedNodes = 1;"
