"""The one translation between ARM pool properties and the data plane's pool, and VM size naming."""

from __future__ import annotations

from typing import Any

import pytest

from batch_emulator.arm.errors import PropertyCannotBeUpdated
from batch_emulator.arm.translate import pool_create_body, pool_properties, pool_update
from batch_emulator.errors import OperationNotImplemented
from batch_emulator.vmfamily import sku_name, vm_family

ARM_BODY: dict[str, Any] = {
    "properties": {
        "vmSize": "Standard_D2s_v3",
        "interNodeCommunication": "Enabled",
        "taskSchedulingPolicy": {"nodeFillType": "Pack"},
        "deploymentConfiguration": {
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "canonical", "offer": "x", "sku": "y"},
                "nodeAgentSkuId": "batch.node.ubuntu 22.04",
            }
        },
        "scaleSettings": {"fixedScale": {"targetDedicatedNodes": 2, "resizeTimeout": "PT5M"}},
        "startTask": {
            "commandLine": "true",
            "userIdentity": {"autoUser": {"scope": "Pool", "elevationLevel": "Admin"}},
        },
        "applicationPackages": [{"id": "app", "version": "1"}],
    }
}


def test_an_arm_pool_becomes_the_data_plane_create_body() -> None:
    body = pool_create_body("p1", ARM_BODY)

    assert body["id"] == "p1"
    assert body["virtualMachineConfiguration"]["nodeAgentSKUId"] == "batch.node.ubuntu 22.04"
    assert (body["targetDedicatedNodes"], body["targetLowPriorityNodes"], body["resizeTimeout"]) == (2, 0, "PT5M")
    assert body["enableInterNodeCommunication"] is True
    assert body["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    assert body["startTask"]["userIdentity"]["autoUser"] == {"scope": "pool", "elevationLevel": "admin"}
    assert body["applicationPackageReferences"] == [{"applicationId": "app", "version": "1"}]


def test_autoscale_settings_reach_the_data_plane_as_its_autoscale_fields() -> None:
    body = pool_create_body(
        "p1", {"properties": {"scaleSettings": {"autoScale": {"formula": "$TargetDedicatedNodes=1"}}}}
    )

    assert (body["enableAutoScale"], body["autoScaleFormula"]) == (True, "$TargetDedicatedNodes=1")
    assert "targetDedicatedNodes" not in body


def test_no_scale_settings_means_a_fixed_pool_of_zero_nodes_as_azure_does() -> None:
    body = pool_create_body("p1", {"properties": {"vmSize": "Standard_D2s_v3"}})

    assert (body["targetDedicatedNodes"], body["targetLowPriorityNodes"]) == (0, 0)


WIRE: dict[str, Any] = {
    "vmSize": "standard_d2s_v3",
    "state": "active",
    "allocationState": "steady",
    "lastModified": "t1",
    "creationTime": "t0",
    "stateTransitionTime": "t0",
    "allocationStateTransitionTime": "t1",
    "enableInterNodeCommunication": False,
    "taskSlotsPerNode": 1,
    "taskSchedulingPolicy": {"nodeFillType": "spread"},
    "virtualMachineConfiguration": {"imageReference": {"publisher": "canonical"}, "nodeAgentSKUId": "agent"},
    "targetDedicatedNodes": 2,
    "targetLowPriorityNodes": 0,
    "resizeTimeout": "PT15M",
    "currentDedicatedNodes": 1,
    "currentLowPriorityNodes": 0,
    "resizeErrors": [{"code": "AccountCoreQuotaReached", "message": "m", "values": []}],
}


def test_a_data_plane_pool_renders_with_arm_names_and_pascal_case_enums() -> None:
    properties = pool_properties(WIRE, "taskcompletion")

    assert properties["vmSize"] == "STANDARD_D2S_V3"
    assert (properties["allocationState"], properties["provisioningState"]) == ("Steady", "Succeeded")
    assert properties["interNodeCommunication"] == "Disabled"
    assert properties["deploymentConfiguration"]["virtualMachineConfiguration"]["nodeAgentSkuId"] == "agent"
    assert properties["scaleSettings"] == {
        "fixedScale": {"targetDedicatedNodes": 2, "targetLowPriorityNodes": 0, "resizeTimeout": "PT15M"}
    }
    status = properties["resizeOperationStatus"]
    assert status["nodeDeallocationOption"] == "TaskCompletion"
    assert status["errors"] == [{"code": "AccountCoreQuotaReached", "message": "m"}]


def test_a_deleting_pool_is_provisioning_state_deleting() -> None:
    assert pool_properties({**WIRE, "state": "deleting"}, "requeue")["provisioningState"] == "Deleting"


def test_an_update_splits_into_a_resize_and_a_property_update() -> None:
    resize, update = pool_update(
        {
            "properties": {
                "vmSize": "standard_D2S_v3",  # unchanged, in another case: accepted
                "scaleSettings": {
                    "fixedScale": {"targetDedicatedNodes": 3, "nodeDeallocationOption": "TaskCompletion"}
                },
                "metadata": [{"name": "a", "value": "b"}],
            }
        },
        WIRE,
    )

    assert resize == {
        "targetDedicatedNodes": 3,
        "targetLowPriorityNodes": 0,
        "nodeDeallocationOption": "taskcompletion",
    }
    assert update == {"metadata": [{"name": "a", "value": "b"}]}


def test_an_update_refuses_a_fixed_property_and_autoscale() -> None:
    with pytest.raises(PropertyCannotBeUpdated) as caught:
        pool_update({"properties": {"vmSize": "Standard_F2s_v2"}}, WIRE)
    assert caught.value.values == [("PropertyName", "properties.vmSize")]
    with pytest.raises(OperationNotImplemented):
        pool_update({"properties": {"scaleSettings": {"autoScale": {"formula": "x"}}}}, WIRE)


@pytest.mark.parametrize(
    ("size", "name", "family"),
    [
        ("standard_d2s_v3", "Standard_D2s_v3", "standardDSv3Family"),
        ("standard_d2ds_v5", "Standard_D2ds_v5", "standardDDSv5Family"),
        ("standard_a1_v2", "Standard_A1_v2", "standardAv2Family"),
        ("standard_nc6s_v3", "Standard_NC6s_v3", "standardNCSv3Family"),
        ("standard_f2s", "Standard_F2s", "standardFSFamily"),
    ],
)
def test_vm_sizes_are_spelled_and_grouped_as_azure_quota_lists_do(size: str, name: str, family: str) -> None:
    assert (sku_name(size), vm_family(size)) == (name, family)
