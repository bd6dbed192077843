"""The one translation between ARM pool properties and the data plane's pool (there is no second pool store).

ARM spells some data-plane properties differently (``deploymentConfiguration.virtualMachineConfiguration``,
``scaleSettings``, ``interNodeCommunication``, ``applicationPackages``, and below them the keys and enum values of
:mod:`batch_emulator.arm.spelling`); the data plane stores them in its own spelling, and the pool and autoscale
models (:mod:`batch_emulator.models.pools`, :mod:`batch_emulator.models.autoscale`) judge the result exactly as
for a data-plane request. Errors name properties as the ARM request spells them (:func:`in_arm_terms`).
"""

from __future__ import annotations

from typing import Any

from batch_emulator.arm.errors import PropertyCannotBeUpdated
from batch_emulator.arm.spelling import ARM_KEYS, property_value, renamed, translate_value
from batch_emulator.errors import BatchError, InvalidPropertyValue, MissingRequiredProperty
from batch_emulator.models import autoscale
from batch_emulator.models.pools import DEALLOCATION_OPTIONS
from batch_emulator.models.validation import optional_duration_seconds, optional_enum, optional_int, require_object

#: ARM property -> data-plane property, where only the name differs (or not even that).
_RENAMED = {
    "displayName": "displayName",
    "vmSize": "vmSize",
    "taskSlotsPerNode": "taskSlotsPerNode",
    "taskSchedulingPolicy": "taskSchedulingPolicy",
    "startTask": "startTask",
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
#: PascalCase values of the pool's own state enums -> the data plane's spelling.
_ENUMS = {"requeue": "Requeue", "terminate": "Terminate", "taskcompletion": "TaskCompletion"}
_ENUMS.update({"retaineddata": "RetainedData", "steady": "Steady", "resizing": "Resizing", "stopping": "Stopping"})
_SCALE = "properties.scaleSettings"
#: Data-plane property -> its ARM path below ``properties``, where more than the name differs.
_ARM_PATHS = {
    "virtualMachineConfiguration": "deploymentConfiguration.virtualMachineConfiguration",
    "cloudServiceConfiguration": "deploymentConfiguration.cloudServiceConfiguration",
    # the data plane names these image properties bare, as the service does
    "imageReference": "deploymentConfiguration.virtualMachineConfiguration.imageReference",
    "nodeAgentSKUId": "deploymentConfiguration.virtualMachineConfiguration.nodeAgentSkuId",
    "autoScaleFormula": "scaleSettings.autoScale.formula",
    "autoScaleEvaluationInterval": "scaleSettings.autoScale.evaluationInterval",
    "targetDedicatedNodes": "scaleSettings.fixedScale.targetDedicatedNodes",
    "targetLowPriorityNodes": "scaleSettings.fixedScale.targetLowPriorityNodes",
    "resizeTimeout": "scaleSettings.fixedScale.resizeTimeout",
    "nodeDeallocationOption": "scaleSettings.fixedScale.nodeDeallocationOption",
}
_APPLICATIONS = "/applications/"


def _arm_enum(value: Any) -> Any:
    return _ENUMS.get(value.lower(), value) if isinstance(value, str) else value


def arm_property_path(path: str) -> str:
    """The ARM path of a data-plane property path, as an error about an ARM request names it.

    ``virtualMachineConfiguration.nodeAgentSKUId`` -> ``properties.deploymentConfiguration.virtualMachineConfiguration
    .nodeAgentSkuId``; ``id`` (the pool name) -> ``name``; a path already in ARM's terms is kept.
    """
    if not path or path.startswith("properties"):
        return path
    if path == "id":
        return "name"
    first, *rest = path.split(".")
    name, bracket, index = first.partition("[")
    parts = [_ARM_PATHS.get(name, _ARM_NAME.get(name, name)) + bracket + index]
    parent = name
    for part in rest:
        key, bracket, index = part.partition("[")
        parent = renamed(ARM_KEYS, parent, key)
        parts.append(parent + bracket + index)
    return "properties." + ".".join(parts)


def in_arm_terms(error: BatchError) -> BatchError:
    """``error`` with the property it names (``PropertyName``) as the ARM request spells it (changed in place)."""
    error.values = [
        (key, arm_property_path(value) if key == "PropertyName" and value is not None else value)
        for key, value in error.values
    ]
    return error


def _package_to_wire(item: Any) -> Any:
    """An ARM ``applicationPackages`` entry as a data-plane reference (``id`` may be the application's resource id)."""
    if not isinstance(item, dict):
        return item
    result = {("applicationId" if key == "id" else key): value for key, value in item.items()}
    package = str(result.get("applicationId", ""))
    if _APPLICATIONS in package.lower():
        name = package[package.lower().rindex(_APPLICATIONS) + len(_APPLICATIONS) :]
        name, _, version = name.partition("/versions/")
        result["applicationId"] = name
        if version and result.get("version") is None:
            result["version"] = version
    return result


def _package_to_arm(item: Any, account_id: str) -> Any:
    if not isinstance(item, dict):
        return item
    result = {("id" if key == "applicationId" else key): value for key, value in item.items()}
    if account_id and isinstance(result.get("id"), str):
        result["id"] = f"{account_id}/applications/{result['id']}"
    return result


def _scale_fields(scale: Any) -> dict[str, Any]:
    """Data-plane fields of ``scaleSettings`` (fixed scale by default, 0 nodes, as ARM does), validated with their
    ARM names.

    Raises:
        BatchError: both or neither of ``fixedScale`` and ``autoScale`` in an object, a bad formula or interval.
    """
    scale = require_object(scale if scale is not None else {}, _SCALE)
    auto, fixed = scale.get("autoScale"), scale.get("fixedScale")
    if auto is not None and fixed is not None:
        raise InvalidPropertyValue(_SCALE, "…", "Give either fixedScale or autoScale, not both.")
    if auto is not None:
        auto = require_object(auto, f"{_SCALE}.autoScale")
        if auto.get("formula") is None:
            raise MissingRequiredProperty(f"{_SCALE}.autoScale.formula")
        formula = autoscale.validate_formula(auto["formula"], f"{_SCALE}.autoScale.formula")
        fields: dict[str, Any] = {"enableAutoScale": True, "autoScaleFormula": formula}
        if auto.get("evaluationInterval") is not None:
            interval = auto["evaluationInterval"]
            fields["autoScaleEvaluationInterval"] = autoscale.validate_interval(
                interval, f"{_SCALE}.autoScale.evaluationInterval"
            )
        return fields
    fixed = require_object(fixed or {}, f"{_SCALE}.fixedScale")
    path = f"{_SCALE}.fixedScale."
    fields = {
        name: optional_int(fixed, name, 0, minimum=0, path=path + name)
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes")
    }
    if optional_duration_seconds(fixed, "resizeTimeout", path=f"{path}resizeTimeout") is not None:
        fields["resizeTimeout"] = fixed["resizeTimeout"]
    if fixed.get("nodeDeallocationOption") is not None:
        fields["nodeDeallocationOption"] = optional_enum(
            fixed, "nodeDeallocationOption", DEALLOCATION_OPTIONS, "requeue", path=f"{path}nodeDeallocationOption"
        )
    return fields


def _settable_fields(properties: dict[str, Any]) -> dict[str, Any]:
    """The data-plane spelling of every ARM property except ``scaleSettings``."""
    body: dict[str, Any] = {}
    for arm_name, wire_name in _RENAMED.items():
        if arm_name in properties:
            body[wire_name] = property_value(arm_name, properties[arm_name], to_arm=False)
    if "applicationPackages" in properties:
        packages = properties["applicationPackages"]
        body["applicationPackageReferences"] = (
            [_package_to_wire(item) for item in packages] if isinstance(packages, list) else packages
        )
    if "interNodeCommunication" in properties:
        value = str(properties["interNodeCommunication"])
        if value.lower() not in ("enabled", "disabled"):
            raise InvalidPropertyValue("properties.interNodeCommunication", value, "Use Enabled or Disabled.")
        body["enableInterNodeCommunication"] = value.lower() == "enabled"
    deployment = properties.get("deploymentConfiguration")
    if deployment is not None:
        deployment = require_object(deployment, "properties.deploymentConfiguration")
        for name in ("virtualMachineConfiguration", "cloudServiceConfiguration"):
            if deployment.get(name) is not None:
                body[name] = translate_value(deployment[name], name, to_arm=False)
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


def pool_update(resource: object, current: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Split an ARM ``PATCH`` (or a ``PUT`` on an existing pool) into data-plane operations.

    Args:
        resource: The ARM request body.
        current: The pool's data-plane properties now (secrets included, to compare a repeated ``PUT``).

    Returns:
        The scale settings in data-plane fields (None when ``scaleSettings`` is absent): ``enableAutoScale`` with
        the formula and interval, or fixed targets; and the property-update body (may be empty).

    Raises:
        PropertyCannotBeUpdated: a fixed property with a new value.
        BatchError: invalid scale settings.
    """
    properties = require_object(require_object(resource).get("properties") or {}, "properties")
    settable = _settable_fields(properties)
    for wire_name, value in settable.items():
        arm_name = _ARM_NAME.get(wire_name, wire_name)
        if arm_name not in _UPDATABLE and not _same(current.get(wire_name), value):
            raise PropertyCannotBeUpdated(f"properties.{arm_name}")
    scale = None if properties.get("scaleSettings") is None else _scale_fields(properties["scaleSettings"])
    update = {name: value for name, value in settable.items() if _ARM_NAME.get(name, name) in _UPDATABLE}
    return scale, update


def _same(current: Any, new: Any) -> bool:
    if isinstance(current, str) and isinstance(new, str):
        return current.lower() == new.lower()
    if isinstance(current, dict) and isinstance(new, dict):
        return all(_same(current.get(key), value) for key, value in new.items())
    if isinstance(current, list) and isinstance(new, list):
        return len(current) == len(new) and all(_same(old, item) for old, item in zip(current, new, strict=True))
    return bool(current == new)


def autoscale_run(run: dict[str, Any]) -> dict[str, Any]:
    """An ``AutoScaleRun`` in ARM's shape (``evaluationTime``; an error's ``values`` become its ``details``)."""
    result: dict[str, Any] = {"evaluationTime": run.get("timestamp")}
    if run.get("results") is not None:
        result["results"] = run["results"]
    error = run.get("error")
    if isinstance(error, dict):
        details = [{"code": item.get("name"), "message": item.get("value")} for item in error.get("values") or []]
        result["error"] = {"code": error.get("code"), "message": error.get("message")}
        if details:
            result["error"]["details"] = details
    return result


def _scale_properties(wire: dict[str, Any], deallocation_option: str) -> dict[str, Any]:
    """``scaleSettings`` (with ``autoScaleRun`` for an autoscale pool) and ``resizeOperationStatus``."""
    properties: dict[str, Any] = {}
    if wire.get("enableAutoScale"):
        auto = {"formula": wire.get("autoScaleFormula"), "evaluationInterval": wire.get("autoScaleEvaluationInterval")}
        properties["scaleSettings"] = {"autoScale": {k: v for k, v in auto.items() if v is not None}}
        if wire.get("autoScaleRun") is not None:
            properties["autoScaleRun"] = autoscale_run(wire["autoScaleRun"])
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
    return properties


def pool_properties(wire: dict[str, Any], deallocation_option: str, account_id: str = "") -> dict[str, Any]:
    """The ARM ``properties`` of a pool, from its data-plane wire JSON.

    Args:
        wire: :func:`batch_emulator.render.pool_wire` of the pool (secrets already left out).
        deallocation_option: The node deallocation option of the pool's last resize.
        account_id: The account's ARM resource id (application package ids are below it).

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
        }
    )
    for name in ("virtualMachineConfiguration", "cloudServiceConfiguration"):
        if wire.get(name) is not None:
            properties["deploymentConfiguration"] = {name: translate_value(wire[name], name, to_arm=True)}
    users = wire.get("userAccounts")
    if isinstance(users, list):
        wire = {**wire, "userAccounts": [_with_elevation(user) for user in users]}
    for arm_name, wire_name in _RENAMED.items():
        if arm_name not in properties and wire.get(wire_name) is not None:
            properties[arm_name] = property_value(arm_name, wire[wire_name], to_arm=True)
    if wire.get("applicationPackageReferences"):
        properties["applicationPackages"] = [
            _package_to_arm(item, account_id) for item in wire["applicationPackageReferences"]
        ]
    properties.update(_scale_properties(wire, deallocation_option))
    properties["currentDedicatedNodes"] = wire["currentDedicatedNodes"]
    properties["currentLowPriorityNodes"] = wire["currentLowPriorityNodes"]
    return properties


def _with_elevation(user: Any) -> Any:
    """A user account with its elevation level (non-admin unless given, as ARM shows it)."""
    return {**user, "elevationLevel": user.get("elevationLevel", "NonAdmin")} if isinstance(user, dict) else user
