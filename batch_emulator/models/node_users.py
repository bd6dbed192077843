"""Node user accounts: kept on the node record (no operating-system account is created).

Batch has no operation that reads users back, so the record serves the create/replace/delete rules:
``NodeUserExists`` on a second create, ``NodeUserNotFound`` on replacing or deleting a missing user.
Passwords are kept only as a SHA-256 digest and never rendered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from batch_emulator.errors import InvalidPropertyValue, NodeUserExists, NodeUserNotFound
from batch_emulator.models.account import Account
from batch_emulator.models.node_ops import check_state, operable_node
from batch_emulator.models.nodes import Node
from batch_emulator.models.validation import optional_bool, require_object, require_str
from batch_emulator.timefmt import parse_iso

#: Batch's default account lifetime when ``expiryTime`` is omitted.
DEFAULT_LIFETIME_SECONDS = 24 * 3600
#: States in which the node's operating system is up, so an account can be added.
_USER_STATES = frozenset({"idle", "running", "starttaskfailed", "waitingforstarttask", "unusable", "offline"})
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass
class NodeUser:
    """One user account of a node."""

    name: str
    is_admin: bool
    expiry_time: float
    password_sha256: str | None
    ssh_public_key: str | None

    def to_doc(self) -> dict[str, Any]:
        """The record as saved by the store (the password only as its digest)."""
        return {
            "name": self.name,
            "isAdmin": self.is_admin,
            "expiryTime": self.expiry_time,
            "passwordSha256": self.password_sha256,
            "sshPublicKey": self.ssh_public_key,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> NodeUser:
        """Rebuild a record saved by :meth:`to_doc`."""
        return cls(
            name=str(doc["name"]),
            is_admin=bool(doc.get("isAdmin", False)),
            expiry_time=float(doc["expiryTime"]),
            password_sha256=doc.get("passwordSha256"),
            ssh_public_key=doc.get("sshPublicKey"),
        )


def _optional_text(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidPropertyValue(name, value, "The value must be a string.")
    return value


def _expiry(data: dict[str, Any], now: float) -> float:
    value = data.get("expiryTime")
    if value is None:
        return now + DEFAULT_LIFETIME_SECONDS
    try:
        return parse_iso(str(value)).timestamp()
    except ValueError as error:
        raise InvalidPropertyValue("expiryTime", value, "The value must be an ISO-8601 date and time.") from error


def _digest(password: str | None) -> str | None:
    return hashlib.sha256(password.encode("utf-8")).hexdigest() if password is not None else None


def _user_node(account: Account, pool_id: str, node_id: str) -> Node:
    node = operable_node(account, pool_id, node_id)
    check_state(node, _USER_STATES, "given user accounts")
    return node


def create_node_user(account: Account, pool_id: str, node_id: str, body: object, now: float) -> NodeUser:
    """Add a user account to a node (``BatchNodeUserCreateOptions``).

    Raises:
        BatchError: invalid body (400), unknown pool or node (404), node not up or the user exists (409).
    """
    data = require_object(body)
    name = require_str(data, "name")
    if not _NAME.match(name):
        raise InvalidPropertyValue(
            "name", name, "A user name is 1 to 32 letters, digits, '.', '-' or '_' (an operating-system login)."
        )
    user = NodeUser(
        name=name,
        is_admin=optional_bool(data, "isAdmin", False),
        expiry_time=_expiry(data, now),
        password_sha256=_digest(_optional_text(data, "password")),
        ssh_public_key=_optional_text(data, "sshPublicKey"),
    )
    node = _user_node(account, pool_id, node_id)
    existing = node.users.get(name.lower())
    if existing is not None and existing.expiry_time > now:
        raise NodeUserExists()  # an expired account is gone, as on a node, so its name is free again
    node.users[name.lower()] = user
    account.changes.nodes.add(node)
    return user


def replace_node_user(
    account: Account, pool_id: str, node_id: str, user_name: str, body: object, now: float
) -> NodeUser:
    """Replace a user's password, expiry and SSH key (``BatchNodeUserUpdateOptions``; omitted ones are cleared).

    Raises:
        BatchError: invalid body (400), unknown pool, node or user (404), node not up (409).
    """
    data = require_object(body)
    expiry = _expiry(data, now)
    password = _optional_text(data, "password")
    key = _optional_text(data, "sshPublicKey")
    node = _user_node(account, pool_id, node_id)
    user = node.users.get(user_name.lower())
    if user is None:
        raise NodeUserNotFound()
    user.expiry_time = expiry
    user.password_sha256 = _digest(password)
    user.ssh_public_key = key
    account.changes.nodes.add(node)
    return user


def delete_node_user(account: Account, pool_id: str, node_id: str, user_name: str) -> None:
    """Remove a user account from a node.

    Raises:
        BatchError: unknown pool, node or user (404).
    """
    node = operable_node(account, pool_id, node_id)
    if node.users.pop(user_name.lower(), None) is None:
        raise NodeUserNotFound()
    account.changes.nodes.add(node)
