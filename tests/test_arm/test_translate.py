"""The one translation between ARM pool properties and the data plane's pool, and VM size naming."""

from __future__ import annotations

from typing import Any

import pytest

from batch_emulator.arm.errors import PropertyCannotBeUpdated
from batch_emulator.arm.translate import arm_property_path, pool_create_body, pool_properties, pool_update
from batch_emulator.errors import BatchError
from batch_emulator.render import without_secrets
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


def test_an_update_refuses_a_fixed_property() -> None:
    with pytest.raises(PropertyCannotBeUpdated) as caught:
        pool_update({"properties": {"vmSize": "Standard_F2s_v2"}}, WIRE)
    assert caught.value.values == [("PropertyName", "properties.vmSize")]


def test_autoscale_settings_of_an_update_become_the_data_plane_autoscale_fields() -> None:
    scale, update = pool_update(
        {
            "properties": {
                "scaleSettings": {"autoScale": {"formula": "$TargetDedicatedNodes=0", "evaluationInterval": "PT06M00S"}}
            }
        },
        WIRE,
    )

    assert scale == {
        "enableAutoScale": True,
        "autoScaleFormula": "$TargetDedicatedNodes=0",
        "autoScaleEvaluationInterval": "PT6M",
    }
    assert update == {}


@pytest.mark.parametrize(
    ("scale", "code", "named"),
    [
        ({"autoScale": {"formula": "$TargetDedicatedNodes = ("}}, "AutoScalingFormulaSyntaxError", None),
        ({"autoScale": {}}, "MissingRequiredProperty", "properties.scaleSettings.autoScale.formula"),
        (
            {"autoScale": {"formula": "$TargetDedicatedNodes=1", "evaluationInterval": "PT1M"}},
            "InvalidPropertyValue",
            "properties.scaleSettings.autoScale.evaluationInterval",
        ),
        (
            {"autoScale": {"formula": "$TargetDedicatedNodes=1"}, "fixedScale": {"targetDedicatedNodes": 1}},
            "InvalidPropertyValue",
            "properties.scaleSettings",
        ),
        (
            {"fixedScale": {"targetDedicatedNodes": -1}},
            "InvalidPropertyValue",
            "properties.scaleSettings.fixedScale.targetDedicatedNodes",
        ),
        (
            {"fixedScale": {"targetDedicatedNodes": 1, "nodeDeallocationOption": "Later"}},
            "InvalidPropertyValue",
            "properties.scaleSettings.fixedScale.nodeDeallocationOption",
        ),
    ],
)
def test_bad_scale_settings_are_refused_with_the_data_plane_code_and_the_arm_property_name(
    scale: dict[str, Any], code: str, named: str | None
) -> None:
    with pytest.raises(BatchError) as caught:
        pool_update({"properties": {"scaleSettings": scale}}, WIRE)

    assert caught.value.code == code
    assert dict(caught.value.values).get("PropertyName") == named


def test_container_mount_network_user_and_policy_settings_are_respelled_both_ways() -> None:
    arm = {
        "deploymentConfiguration": {
            "virtualMachineConfiguration": {
                "imageReference": {"publisher": "microsoft-azure-batch", "offer": "ubuntu-server-container"},
                "nodeAgentSkuId": "batch.node.ubuntu 20.04",
                "containerConfiguration": {
                    "type": "DockerCompatible",
                    "containerImageNames": ["busybox"],
                    "containerRegistries": [{"registryServer": "localhost", "username": "u", "password": "p"}],
                },
            }
        },
        "startTask": {
            "commandLine": "true",
            "userIdentity": {"userName": "worker"},
            "containerSettings": {"imageName": "busybox", "workingDirectory": "ContainerImageDefault"},
        },
        "mountConfiguration": [
            {"cifsMountConfiguration": {"userName": "u", "source": "//s/x", "relativeMountPath": "x", "password": "p"}}
        ],
        "networkConfiguration": {
            "dynamicVnetAssignmentScope": "none",
            "endpointConfiguration": {
                "inboundNatPools": [
                    {
                        "name": "ssh",
                        "protocol": "TCP",
                        "backendPort": 22,
                        "frontendPortRangeStart": 15000,
                        "frontendPortRangeEnd": 15099,
                        "networkSecurityGroupRules": [{"priority": 150, "access": "Allow", "sourceAddressPrefix": "*"}],
                    }
                ]
            },
            "publicIPAddressConfiguration": {"provision": "BatchManaged"},
        },
        "userAccounts": [
            {"name": "admin", "password": "p", "elevationLevel": "Admin", "linuxUserConfiguration": {"uid": 1001}},
            {"name": "win", "password": "p", "windowsUserConfiguration": {"loginMode": "Interactive"}},
        ],
        "taskSchedulingPolicy": {"nodeFillType": "Pack", "jobDefaultOrder": "CreationTime"},
        "metadata": [{"name": "owner", "value": "snakemake"}],
        "applicationPackages": [
            {
                "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Batch/batchAccounts/a"
                "/applications/tool/versions/2"
            }
        ],
    }

    body = pool_create_body("p1", {"properties": arm})

    config = body["virtualMachineConfiguration"]
    assert config["nodeAgentSKUId"] == "batch.node.ubuntu 20.04"
    assert config["containerConfiguration"]["type"] == "dockerCompatible"
    assert body["startTask"]["userIdentity"] == {"username": "worker"}
    assert body["startTask"]["containerSettings"]["workingDirectory"] == "containerImageDefault"
    assert body["mountConfiguration"][0]["cifsMountConfiguration"]["username"] == "u"
    network = body["networkConfiguration"]
    assert network["dynamicVNetAssignmentScope"] == "none"
    [nat] = network["endpointConfiguration"]["inboundNATPools"]
    assert (nat["protocol"], nat["networkSecurityGroupRules"][0]["access"]) == ("tcp", "allow")
    assert network["publicIPAddressConfiguration"] == {"provision": "batchmanaged"}
    assert [user.get("elevationLevel") for user in body["userAccounts"]] == ["admin", None]
    assert body["userAccounts"][1]["windowsUserConfiguration"] == {"loginMode": "interactive"}
    assert body["taskSchedulingPolicy"] == {"nodeFillType": "pack", "jobDefaultOrder": "creationtime"}
    assert body["metadata"] == [{"name": "owner", "value": "snakemake"}]
    assert body["applicationPackageReferences"] == [{"applicationId": "tool", "version": "2"}]

    wire = {**WIRE, **{name: value for name, value in body.items() if name != "id"}, **_SCALE_WIRE}
    back = pool_properties(without_secrets(wire), "requeue", "/acct")

    expected = without_secrets(arm)
    expected["userAccounts"][1]["elevationLevel"] = "NonAdmin"
    expected["applicationPackages"] = [{"id": "/acct/applications/tool", "version": "2"}]
    assert {name: back[name] for name in expected} == expected


_SCALE_WIRE: dict[str, Any] = {"targetDedicatedNodes": 0, "enableAutoScale": False}


def test_an_autoscale_pool_shows_its_formula_and_last_evaluation_in_arm_shape() -> None:
    run = {
        "timestamp": "2026-01-01T00:00:00.000Z",
        "error": {"code": "E", "message": "m", "values": [{"name": "Message", "value": "v"}]},
    }
    wire = {**WIRE, "enableAutoScale": True, "autoScaleFormula": "f", "autoScaleEvaluationInterval": "PT5M"}

    properties = pool_properties({**wire, "autoScaleRun": run}, "requeue")

    assert properties["scaleSettings"] == {"autoScale": {"formula": "f", "evaluationInterval": "PT5M"}}
    assert properties["autoScaleRun"] == {
        "evaluationTime": "2026-01-01T00:00:00.000Z",
        "error": {"code": "E", "message": "m", "details": [{"code": "Message", "message": "v"}]},
    }
    assert "resizeOperationStatus" in properties


@pytest.mark.parametrize(
    ("wire", "arm"),
    [
        (
            "virtualMachineConfiguration.nodeAgentSKUId",
            "properties.deploymentConfiguration.virtualMachineConfiguration.nodeAgentSkuId",
        ),
        (
            "networkConfiguration.endpointConfiguration.inboundNATPools[1].protocol",
            "properties.networkConfiguration.endpointConfiguration.inboundNatPools[1].protocol",
        ),
        ("startTask.userIdentity.username", "properties.startTask.userIdentity.userName"),
        ("autoScaleFormula", "properties.scaleSettings.autoScale.formula"),
        ("applicationPackageReferences", "properties.applicationPackages"),
        ("id", "name"),
        ("properties.scaleSettings", "properties.scaleSettings"),
    ],
)
def test_errors_name_data_plane_properties_as_the_arm_request_spells_them(wire: str, arm: str) -> None:
    assert arm_property_path(wire) == arm


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
