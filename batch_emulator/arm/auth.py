"""Authentication of management-plane requests: Bearer tokens only (ARM never takes SharedKey).

- With ``--allow-bearer`` (the development Entra ID mode, served over https) any client may send a token.
- In key mode (no ``--allow-bearer``) the data plane takes SharedKey only, but the management plane still takes
  Bearer tokens from loopback clients: a development service has no other way to be managed, and the loopback
  rule is the one its ``/_emulator/`` admin routes follow.

As for the data plane, signatures are not checked; a JWT whose audience is not Azure Resource Manager is refused
(``InvalidAuthenticationTokenAudience``, as ARM does).
"""

from __future__ import annotations

from collections.abc import Mapping

from batch_emulator.arm.errors import ArmAuthenticationFailed, InvalidAuthenticationTokenAudience
from batch_emulator.auth import bearer_audience
from batch_emulator.config import LOOPBACK_HOSTS

#: Audiences of Azure Resource Manager tokens (both resource URIs, with and without the slash).
ARM_AUDIENCES = frozenset(
    {
        "https://management.azure.com/",
        "https://management.azure.com",
        "https://management.core.windows.net/",
        "https://management.core.windows.net",
    }
)


def verify_arm(headers: Mapping[str, str], client_host: str, *, allow_bearer: bool) -> None:
    """Authenticate one management-plane request.

    Args:
        headers: Request headers with lower-cased names.
        client_host: The client's address.
        allow_bearer: Whether the service runs in its development Entra ID mode.

    Raises:
        ArmAuthenticationFailed: no Bearer token, or (key mode) a client that is not on loopback.
        InvalidAuthenticationTokenAudience: a JWT for another audience.
    """
    scheme, _, token = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ArmAuthenticationFailed(
            "Authentication failed. The management plane takes 'Authorization: Bearer <token>' only "
            "(request the token for the scope https://management.azure.com/.default)."
        )
    if not allow_bearer and client_host not in LOOPBACK_HOSTS:
        raise ArmAuthenticationFailed(
            "Authentication failed. Without --allow-bearer the management plane answers loopback clients only."
        )
    audience = bearer_audience(token.strip())
    if audience is not None and audience not in ARM_AUDIENCES:
        raise InvalidAuthenticationTokenAudience(
            f"The access token is for audience '{audience}', not Azure Resource Manager "
            "(request it for the scope https://management.azure.com/.default)."
        )
