"""Inbound endpoints of nodes and remote login: ports from the pool's inbound NAT pools, on loopback.

Nothing listens on these ports: the emulator has no NAT and no SSH server. A node's frontend port is
stable (the pool's range start plus the node's position in the pool), so scripts that read it work.
"""

from __future__ import annotations

from typing import Any

from batch_emulator.errors import InvalidPropertyValue
from batch_emulator.models.nodes import Node
from batch_emulator.models.validation import optional_int, optional_list, require_object, require_str

LOOPBACK_ADDRESS = "127.0.0.1"
LOOPBACK_FQDN = "localhost"
SSH_PORT = 22
RDP_PORT = 3389
#: The NAT pool Batch gives a Linux pool without an endpoint configuration (SSH on 22, frontends from 50000).
DEFAULT_NAT_POOL: dict[str, Any] = {
    "name": "SSHRule",
    "protocol": "tcp",
    "backendPort": SSH_PORT,
    "frontendPortRangeStart": 50000,
    "frontendPortRangeEnd": 55000,
}
#: The same for a Windows pool (RDP on 3389).
DEFAULT_WINDOWS_NAT_POOL: dict[str, Any] = {**DEFAULT_NAT_POOL, "name": "RDPRule", "backendPort": RDP_PORT}
_PORT_MAX = 65535


def validate_network_configuration(body: dict[str, Any]) -> None:
    """Check ``networkConfiguration.endpointConfiguration.inboundNATPools`` of a pool body.

    Raises:
        BatchError: a NAT pool without name, protocol or ports, or with an empty or inverted range (400).
    """
    network = body.get("networkConfiguration")
    if network is None:
        return
    network = require_object(network, "networkConfiguration")
    endpoints = network.get("endpointConfiguration")
    if endpoints is None:
        return
    endpoints = require_object(endpoints, "networkConfiguration.endpointConfiguration")
    path = "networkConfiguration.endpointConfiguration.inboundNATPools"
    for index, item in enumerate(optional_list(endpoints, "inboundNATPools", path=path)):
        label = f"{path}[{index}]"
        nat = require_object(item, label)
        require_str(nat, "name", path=f"{label}.name")
        protocol = require_str(nat, "protocol", path=f"{label}.protocol")
        if protocol.lower() not in ("tcp", "udp"):
            raise InvalidPropertyValue(f"{label}.protocol", protocol, "The protocol must be tcp or udp.")
        for name in ("backendPort", "frontendPortRangeStart", "frontendPortRangeEnd"):
            if nat.get(name) is None:
                raise InvalidPropertyValue(f"{label}.{name}", None, "The port is required.")
            optional_int(nat, name, 0, minimum=1, maximum=_PORT_MAX, path=f"{label}.{name}")
        if nat["frontendPortRangeStart"] > nat["frontendPortRangeEnd"]:
            raise InvalidPropertyValue(
                f"{label}.frontendPortRangeEnd", nat["frontendPortRangeEnd"], "The range end is below its start."
            )


def _windows(node: Node) -> bool:
    sku = str((node.pool.spec.get("virtualMachineConfiguration") or {}).get("nodeAgentSKUId", ""))
    return sku.lower().startswith("batch.node.windows")


def _default_nat_pool(node: Node) -> dict[str, Any]:
    return DEFAULT_WINDOWS_NAT_POOL if _windows(node) else DEFAULT_NAT_POOL


def nat_pools(node: Node) -> list[dict[str, Any]]:
    """The pool's inbound NAT pools, or Batch's default SSH (RDP on Windows) pool when it configures none."""
    network = node.pool.spec.get("networkConfiguration") or {}
    configured = (network.get("endpointConfiguration") or {}).get("inboundNATPools") or []
    return list(configured) or [_default_nat_pool(node)]


def frontend_port(nat_pool: dict[str, Any], node: Node) -> int:
    """The node's frontend port in a NAT pool: its position in the pool past the range start (wrapping)."""
    start = int(nat_pool["frontendPortRangeStart"])
    size = int(nat_pool["frontendPortRangeEnd"]) - start + 1
    return start + (max(node.number, 1) - 1) % size


def inbound_endpoints(node: Node) -> list[dict[str, Any]]:
    """The node's ``endpointConfiguration.inboundEndpoints`` (one per NAT pool, named ``<pool>.<n>``)."""
    return [
        {
            "name": f"{nat['name']}.{max(node.number, 1) - 1}",
            "protocol": str(nat["protocol"]).lower(),
            "publicIPAddress": LOOPBACK_ADDRESS,
            "publicFQDN": LOOPBACK_FQDN,
            "frontendPort": frontend_port(nat, node),
            "backendPort": int(nat["backendPort"]),
        }
        for nat in nat_pools(node)
    ]


def remote_login_port(node: Node) -> int:
    """The node's login frontend port: of the NAT pool for backend port 22 (3389 on Windows), else the default's."""
    default = _default_nat_pool(node)
    for nat in nat_pools(node):
        if int(nat["backendPort"]) == default["backendPort"]:
            return frontend_port(nat, node)
    return frontend_port(default, node)
