"""The one translation between ARM pool properties and the data plane's pool (there is no second pool store).

ARM spells some data-plane properties differently (``deploymentConfiguration.virtualMachineConfiguration``,
``nodeAgentSkuId``, ``scaleSettings``, ``interNodeCommunication``, ``applicationPackages``) and writes enum values
in PascalCase (``Spread``, ``Requeue``, ``Admin``); the data plane stores them in its own spelling, and the
pool model (:mod:`batch_emulator.models.pools`) validates the result exactly as for a data-plane request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from batch_emulator.arm.errors import PropertyCannotBeUpdated
from batch_emulator.errors import InvalidPropertyValue, OperationNotImplemented
from batch_emulator.models.validation import require_object

#: ARM property -> data-plane property, where only the name differs (or not even that).
_RENAMED = {
    "displayName": "displayName",
    "vmSize": "vmSize",
    "taskSlotsPerNode": "taskSlotsPerNode",
    "metadata": "metadata",
    "userAccounts": "userAccounts",
    "networkConfiguration": "networkConfiguration",
    "mountConfiguration": "mountConfiguration",
    "applicationLicenses": "applicationLicenses",
    "targetNodeCommunicationMode": "targetNodeCommunicationMode",
    "upgradePolicy": "upgradePolicy",
    "resourceTags": "resourceTags",
    "certificates": "certificateReferences",
}
#: Data-plane property -> the ARM property it comes from.
_ARM_NAME = {wire: arm for arm, wire in _RENAMED.items()}
_ARM_NAME.update(
    {
        "applicationPackageReferences": "applicationPackages",
        "enableInterNodeCommunication": "interNodeCommunication",
        "virtualMachineConfiguration": "deploymentConfiguration",
        "cloudServiceConfiguration": "deploymentConfiguration",
    }
)
#: Properties a PATCH may change (the others are fixed once the pool exists).
_UPDATABLE = frozenset({"displayName", "metadata", "startTask", "applicationPackages", "certificates", "scaleSettings"})
#: PascalCase enum values of ARM -> the data plane's spelling.
_ENUMS = {"pool": "Pool", "task": "Task", "admin": "Admin", "nonadmin": "NonAdmin", "spread": "Spread", "pack": "Pack"}
_ENUMS.update({"requeue": "Requeue", "terminate": "Terminate", "taskcompletion": "TaskCompletion"})
_ENUMS.update({"retaineddata": "RetainedData", "steady": "Steady", "resizing": "Resizing", "stopping": "Stopping"})


def _arm_enum(value: Any) -> Any:
    return _ENUMS.get(value.lower(), value) if isinstance(value, str) else value


def _wire_enum(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _convert_start_task(start_task: Any, convert: Callable[[Any], Any]) -> Any:
    """A start task with its ``userIdentity.autoUser`` enum values (scope, elevation level) converted."""
    if not isinstance(start_task, dict):
        return start_task
    result = dict(start_task)
    identity = result.get("userIdentity")
    if isinstance(identity, dict) and isinstance(identity.get("autoUser"), dict):
        auto_user = {key: convert(value) for key, value in identity["autoUser"].items()}
        result["userIdentity"] = {**identity, "autoUser": auto_user}
    return result


def _rename(item: Any, old: str, new: str) -> Any:
    """``item`` with its key ``old`` renamed ``new`` (anything but an object unchanged)."""
    return {(new if key == old else key): value for key, value in item.items()} if isinstance(item, dict) else item


def _application_packages(packages: Any, *, to_arm: bool) -> Any:
    if not isinstance(packages, list):
        return packages
    old, new = ("applicationId", "id") if to_arm else ("id", "applicationId")
    return [_rename(item, old, new) for item in packages]


def _vm_configuration(config: Any, *, to_arm: bool) -> Any:
    names = ("nodeAgentSKUId", "nodeAgentSkuId")
    return _rename(config, *names) if to_arm else _rename(config, *reversed(names))


def _scale_fields(scale: Any) -> dict[str, Any]:
    """Data-plane fields of ``scaleSettings`` (fixed scale by default, 0 nodes, as ARM does)."""
    scale = require_object(scale if scale is not None else {}, "properties.scaleSettings")
    auto = scale.get("autoScale")
    if auto is not None:
        auto = require_object(auto, "properties.scaleSettings.autoScale")
        fields: dict[str, Any] = {"enableAutoScale": True, "autoScaleFormula": auto.get("formula")}
        if auto.get("evaluationInterval") is not None:
            fields["autoScaleEvaluationInterval"] = auto["evaluationInterval"]
        return fields
    fixed = require_object(scale.get("fixedScale") or {}, "properties.scaleSettings.fixedScale")
    fields = {
        "targetDedicatedNodes": fixed.get("targetDedicatedNodes", 0),
        "targetLowPriorityNodes": fixed.get("targetLowPriorityNodes", 0),
    }
    if fixed.get("resizeTimeout") is not None:
        fields["resizeTimeout"] = fixed["resizeTimeout"]
    if fixed.get("nodeDeallocationOption") is not None:
        fields["nodeDeallocationOption"] = _wire_enum(fixed["nodeDeallocationOption"])
    return fields


def _settable_fields(properties: dict[str, Any]) -> dict[str, Any]:
    """The data-plane spelling of every ARM property except ``scaleSettings``."""
    body: dict[str, Any] = {}
    for arm_name, wire_name in _RENAMED.items():
        if arm_name in properties:
            body[wire_name] = properties[arm_name]
    if "startTask" in properties:
        body["startTask"] = _convert_start_task(properties["startTask"], _wire_enum)
    if "applicationPackages" in properties:
        body["applicationPackageReferences"] = _application_packages(properties["applicationPackages"], to_arm=False)
    if "interNodeCommunication" in properties:
        value = str(properties["interNodeCommunication"])
        if value.lower() not in ("enabled", "disabled"):
            raise InvalidPropertyValue("properties.interNodeCommunication", value, "Use Enabled or Disabled.")
        body["enableInterNodeCommunication"] = value.lower() == "enabled"
    policy = properties.get("taskSchedulingPolicy")
    if isinstance(policy, dict):
        body["taskSchedulingPolicy"] = {**policy, "nodeFillType": _wire_enum(policy.get("nodeFillType", "spread"))}
    deployment = properties.get("deploymentConfiguration")
    if deployment is not None:
        deployment = require_object(deployment, "properties.deploymentConfiguration")
        if deployment.get("virtualMachineConfiguration") is not None:
            config = _vm_configuration(deployment["virtualMachineConfiguration"], to_arm=False)
            body["virtualMachineConfiguration"] = config
        if deployment.get("cloudServiceConfiguration") is not None:
            body["cloudServiceConfiguration"] = deployment["cloudServiceConfiguration"]
    return body


def pool_create_body(name: str, resource: object) -> dict[str, Any]:
    """The data-plane ``BatchPoolCreateOptions`` body of an ARM ``PUT .../pools/{name}`` body.

    Args:
        name: The pool name from the path (the data plane's pool id).
        resource: The ARM request body (``{"properties": {...}}``).

    Returns:
        The body :func:`batch_emulator.models.pools.create_pool` validates.

    Raises:
        BatchError: the body is not an object.
    """
    properties = require_object(require_object(resource).get("properties") or {}, "properties")
    body: dict[str, Any] = {"id": name}
    body.update(_settable_fields(properties))
    scale = _scale_fields(properties.get("scaleSettings"))
    scale.pop("nodeDeallocationOption", None)
    body.update(scale)
    return body


def pool_update(resource: object, current_wire: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Split an ARM ``PATCH`` (or a ``PUT`` on an existing pool) into data-plane operations.

    Args:
        resource: The ARM request body.
        current_wire: The pool's data-plane wire JSON now.

    Returns:
        The resize body (None when ``scaleSettings`` is absent) and the property-update body (may be empty).

    Raises:
        PropertyCannotBeUpdated: a fixed property with a new value.
        OperationNotImplemented: ``scaleSettings.autoScale`` (the local service has no pool autoscale).
    """
    properties = require_object(require_object(resource).get("properties") or {}, "properties")
    settable = _settable_fields(properties)
    for wire_name, value in settable.items():
        arm_name = _ARM_NAME.get(wire_name, wire_name)
        if arm_name not in _UPDATABLE and not _same(current_wire.get(wire_name), value):
            raise PropertyCannotBeUpdated(f"properties.{arm_name}")
    resize = None
    if properties.get("scaleSettings") is not None:
        resize = _scale_fields(properties["scaleSettings"])
        if resize.get("enableAutoScale"):
            raise OperationNotImplemented("pool autoscale (properties.scaleSettings.autoScale)")
    update = {name: value for name, value in settable.items() if _ARM_NAME.get(name, name) in _UPDATABLE}
    return resize, update


def _same(current: Any, new: Any) -> bool:
    if isinstance(current, str) and isinstance(new, str):
        return current.lower() == new.lower()
    if isinstance(current, dict) and isinstance(new, dict):
        return all(_same(current.get(key), value) for key, value in new.items())
    return bool(current == new)


def pool_properties(wire: dict[str, Any], deallocation_option: str) -> dict[str, Any]:
    """The ARM ``properties`` of a pool, from its data-plane wire JSON.

    Args:
        wire: :func:`batch_emulator.render.pool_wire` of the pool.
        deallocation_option: The node deallocation option of the pool's last resize.

    Returns:
        ARM pool properties (PascalCase enums, ``deploymentConfiguration``, ``scaleSettings``...).
    """
    properties: dict[str, Any] = {}
    if wire.get("displayName") is not None:
        properties["displayName"] = wire["displayName"]
    properties.update(
        {
            "lastModified": wire["lastModified"],
            "creationTime": wire["creationTime"],
            "provisioningState": "Deleting" if wire["state"] == "deleting" else "Succeeded",
            "provisioningStateTransitionTime": wire["stateTransitionTime"],
            "allocationState": _arm_enum(wire["allocationState"]),
            "allocationStateTransitionTime": wire["allocationStateTransitionTime"],
            "vmSize": str(wire["vmSize"]).upper(),
            "interNodeCommunication": "Enabled" if wire.get("enableInterNodeCommunication") else "Disabled",
            "taskSlotsPerNode": wire["taskSlotsPerNode"],
            "taskSchedulingPolicy": {"nodeFillType": _arm_enum(wire["taskSchedulingPolicy"]["nodeFillType"])},
        }
    )
    if wire.get("virtualMachineConfiguration") is not None:
        config = _vm_configuration(wire["virtualMachineConfiguration"], to_arm=True)
        properties["deploymentConfiguration"] = {"virtualMachineConfiguration": config}
    if wire.get("enableAutoScale"):
        auto = {"formula": wire.get("autoScaleFormula"), "evaluationInterval": wire.get("autoScaleEvaluationInterval")}
        properties["scaleSettings"] = {"autoScale": {k: v for k, v in auto.items() if v is not None}}
    else:
        fixed = {name: wire[name] for name in ("targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout")}
        properties["scaleSettings"] = {"fixedScale": fixed}
        status: dict[str, Any] = {
            "targetDedicatedNodes": wire["targetDedicatedNodes"],
            "targetLowPriorityNodes": wire["targetLowPriorityNodes"],
            "nodeDeallocationOption": _arm_enum(deallocation_option),
            "resizeTimeout": wire["resizeTimeout"],
            "startTime": wire["allocationStateTransitionTime"],
        }
        if wire.get("resizeErrors"):
            status["errors"] = [{"code": e.get("code"), "message": e.get("message")} for e in wire["resizeErrors"]]
        properties["resizeOperationStatus"] = status
    if wire.get("startTask") is not None:
        properties["startTask"] = _convert_start_task(wire["startTask"], _arm_enum)
    for arm_name, wire_name in _RENAMED.items():
        if arm_name not in properties and wire.get(wire_name) is not None:
            properties[arm_name] = wire[wire_name]
    if wire.get("applicationPackageReferences"):
        properties["applicationPackages"] = _application_packages(wire["applicationPackageReferences"], to_arm=True)
    properties["currentDedicatedNodes"] = wire["currentDedicatedNodes"]
    properties["currentLowPriorityNodes"] = wire["currentLowPriorityNodes"]
    return properties
