"""How ARM and the data plane spell the properties below a pool property: keys that differ and enum values.

ARM writes ``nodeAgentSkuId``, ``inboundNatPools``, ``userName`` and PascalCase enum values (``DockerCompatible``,
``TCP``, ``NonAdmin``) where the data plane writes ``nodeAgentSKUId``, ``inboundNATPools``, ``username`` and its
own spelling (``dockerCompatible``, ``tcp``, ``nonadmin``). :func:`translate_value` respells a value either way, at
any depth; everything else passes as it is. The tables are data: add a row for a property that differs.
"""

from __future__ import annotations

from typing import Any

#: Keys ARM spells differently below a pool property (ARM -> data plane): anywhere, or as ``<parent>.<key>``.
KEYS = {
    "nodeAgentSkuId": "nodeAgentSKUId",
    "inboundNatPools": "inboundNATPools",
    "dynamicVnetAssignmentScope": "dynamicVNetAssignmentScope",
    "userIdentity.userName": "username",
    "cifsMountConfiguration.userName": "username",
}
#: Data-plane key (as ``<parent>.<key>`` where :data:`KEYS` names a parent) -> ARM key.
ARM_KEYS = {
    f"{parent}{dot}{wire}": arm for parent, dot, arm, wire in ((*k.rpartition("."), v) for k, v in KEYS.items())
}
_ELEVATION = (("NonAdmin", "nonadmin"), ("Admin", "admin"))
_CACHING = (("None", "none"), ("ReadOnly", "readonly"), ("ReadWrite", "readwrite"))
_STORAGE = (("Standard_LRS", "standard_lrs"), ("Premium_LRS", "premium_lrs"), ("StandardSSD_LRS", "standardssd_lrs"))
#: Enum-valued properties, as ``<parent>.<name>`` in ARM's spelling: each value as ARM and as the data plane writes it.
ENUM_VALUES: dict[str, tuple[tuple[str, str], ...]] = {
    "containerConfiguration.type": (("DockerCompatible", "dockerCompatible"), ("CriCompatible", "criCompatible")),
    "containerSettings.workingDirectory": (
        ("TaskWorkingDirectory", "taskWorkingDirectory"),
        ("ContainerImageDefault", "containerImageDefault"),
    ),
    "autoUser.scope": (("Task", "task"), ("Pool", "pool")),
    "autoUser.elevationLevel": _ELEVATION,
    "userAccounts.elevationLevel": _ELEVATION,
    "windowsUserConfiguration.loginMode": (("Batch", "batch"), ("Interactive", "interactive")),
    "inboundNatPools.protocol": (("TCP", "tcp"), ("UDP", "udp")),
    "networkSecurityGroupRules.access": (("Allow", "allow"), ("Deny", "deny")),
    "publicIPAddressConfiguration.provision": (
        ("BatchManaged", "batchmanaged"),
        ("UserManaged", "usermanaged"),
        ("NoPublicIPAddresses", "nopublicipaddresses"),
    ),
    "taskSchedulingPolicy.nodeFillType": (("Spread", "spread"), ("Pack", "pack")),
    "taskSchedulingPolicy.jobDefaultOrder": (("None", "none"), ("CreationTime", "creationtime")),
    "dataDisks.caching": _CACHING,
    "dataDisks.storageAccountType": _STORAGE,
    "osDisk.caching": _CACHING,
    "managedDisk.storageAccountType": _STORAGE,
    "ephemeralOSDiskSettings.placement": (("CacheDisk", "cachedisk"),),
    "properties.targetNodeCommunicationMode": (
        ("Default", "default"),
        ("Classic", "classic"),
        ("Simplified", "simplified"),
    ),
}


def respell(value: Any, pairs: tuple[tuple[str, str], ...], *, to_arm: bool) -> Any:
    """An enum value in the other plane's spelling (an unknown value unchanged: the pool model judges it)."""
    if isinstance(value, str):
        for arm, wire in pairs:
            if value.lower() == arm.lower():
                return arm if to_arm else wire
    return value


def renamed(names: dict[str, str], parent: str, key: str) -> str:
    return names.get(f"{parent}.{key}") or names.get(key, key)


def translate_value(value: Any, parent: str, *, to_arm: bool) -> Any:
    """``value``, found under the ARM property ``parent``, in the other plane's spelling.

    Keys ARM spells differently (:data:`KEYS`) are renamed and enum values (:data:`ENUM_VALUES`) respelled,
    at any depth (a list's items are under the list's name); nothing is changed in place.
    """
    if isinstance(value, list):
        return [translate_value(item, parent, to_arm=to_arm) for item in value]
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for name, item in value.items():
        key = str(name)
        arm_key = renamed(ARM_KEYS, parent, key) if to_arm else key
        pairs = ENUM_VALUES.get(f"{parent}.{arm_key}")
        new_key = arm_key if to_arm else renamed(KEYS, parent, key)
        result[new_key] = (
            respell(item, pairs, to_arm=to_arm) if pairs else translate_value(item, arm_key, to_arm=to_arm)
        )
    return result


def property_value(arm_name: str, value: Any, *, to_arm: bool) -> Any:
    """A pool property's value in the other plane's spelling."""
    pairs = ENUM_VALUES.get(f"properties.{arm_name}")
    return respell(value, pairs, to_arm=to_arm) if pairs else translate_value(value, arm_name, to_arm=to_arm)
