"""Local Entra ID mode: a development credential that mints unsigned tokens, and a local CA for TLS.

Azure SDKs send Bearer tokens only over HTTPS, so in this mode Azurite and the local Batch service serve TLS
with a certificate for 127.0.0.1 issued by a CA made here (with ``trustme``). Azurite's ``--oauth basic`` checks
a token's issuer, audience and lifetime but not its signature; the local Batch service's ``--allow-bearer``
checks the audience. :class:`LocalDevelopmentCredential` mints exactly such tokens. Real Azure refuses them:
this module is for the ``local`` target only and never talks to any identity endpoint.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from batchpipe.errors import ConfigurationError

_log = logging.getLogger(__name__)

#: The made-up tenant and principal the local tokens name (they appear as ``sktid``/``skoid`` in SAS).
LOCAL_TENANT_ID = "00000000-0000-4000-8000-00000000b47c"
LOCAL_OBJECT_ID = "00000000-0000-4000-8000-0000000de7e1"
#: Azurite's basic OAuth accepts issuers starting with ``https://sts.windows.net/`` only.
LOCAL_ISSUER = f"https://sts.windows.net/{LOCAL_TENANT_ID}/"
STORAGE_AUDIENCE = "https://storage.azure.com"
BATCH_AUDIENCE = "https://batch.core.windows.net/"
#: Azure Resource Manager (the Batch management plane, served by the local Batch service too).
MANAGEMENT_AUDIENCE = "https://management.azure.com/"
#: Scope (as the SDKs request it, without ``/.default``) to the ``aud`` claim Entra ID would issue.
AUDIENCE_FOR_RESOURCE = {
    "https://storage.azure.com": STORAGE_AUDIENCE,
    "https://storage.azure.com/": STORAGE_AUDIENCE,
    "https://batch.core.windows.net": BATCH_AUDIENCE,
    "https://batch.core.windows.net/": BATCH_AUDIENCE,
    "https://management.azure.com": MANAGEMENT_AUDIENCE,
    "https://management.azure.com/": MANAGEMENT_AUDIENCE,
}
TOKEN_LIFETIME_SECONDS = 3600
# Tokens are valid from a little before "now", like Entra ID's, so a clock a few seconds apart does not matter.
NOT_BEFORE_SKEW_SECONDS = 300
TLS_DIR_NAME = "tls"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def _base64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unsigned_token(audience: str, *, now: float | None = None, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    """An unsigned JWT shaped like an Entra ID v1 access token for ``audience``.

    Args:
        audience: the ``aud`` claim.
        now: the issue time (Unix seconds; default: now).
        lifetime: seconds until ``exp``.

    Returns:
        ``<header>.<claims>.`` (``alg: none``, empty signature).
    """
    issued = int(now if now is not None else time.time())
    claims = {
        "aud": audience,
        "iss": LOCAL_ISSUER,
        "iat": issued,
        "nbf": issued - NOT_BEFORE_SKEW_SECONDS,
        "exp": issued + lifetime,
        "oid": LOCAL_OBJECT_ID,
        "sub": LOCAL_OBJECT_ID,
        "tid": LOCAL_TENANT_ID,
        "name": "batchpipe local developer",
        "ver": "1.0",
    }
    return f"{_base64url({'alg': 'none', 'typ': 'JWT'})}.{_base64url(claims)}."


def audience_for_scope(scope: str) -> str:
    """The audience Entra ID puts in a token requested for ``scope``.

    Args:
        scope: e.g. ``https://storage.azure.com/.default`` or ``https://batch.core.windows.net//.default``.

    Returns:
        e.g. ``https://storage.azure.com`` or ``https://batch.core.windows.net/``.

    Raises:
        ClientAuthenticationError: the scope is not Storage, Batch or Resource Manager (nothing else runs locally).
    """
    resource = scope.removesuffix("/.default")
    audience = AUDIENCE_FOR_RESOURCE.get(resource)
    if audience is None:
        raise ClientAuthenticationError(
            "the local development credential issues tokens for Storage, Batch and Resource Manager only, "
            f"not for scope {scope!r}"
        )
    return audience


class LocalDevelopmentCredential:
    """A ``TokenCredential`` for the local target in Entra ID mode: unsigned tokens, never a network call."""

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """Mint a token for one scope.

        Args:
            *scopes: exactly one scope (Storage, Batch or Resource Manager).
            claims: ignored (no claims challenges locally).
            tenant_id: ignored (one made-up tenant).
            enable_cae: ignored.
            **kwargs: ignored.

        Returns:
            The token and its expiry.

        Raises:
            ClientAuthenticationError: not exactly one scope, or a scope other than Storage, Batch or Resource Manager.
        """
        if len(scopes) != 1:
            raise ClientAuthenticationError(f"the local development credential takes one scope, got {scopes!r}")
        audience = audience_for_scope(scopes[0])
        now = time.time()
        _log.debug("local development token minted for audience %s", audience)
        return AccessToken(unsigned_token(audience, now=now), int(now) + TOKEN_LIFETIME_SECONDS)


@dataclass(frozen=True)
class LocalTls:
    """The files of the local TLS setup: the CA clients trust, and the server's certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def ensure_local_tls(state_dir: Path) -> LocalTls:
    """Create a CA and a certificate for 127.0.0.1/localhost under ``state_dir/tls`` (kept for later runs).

    Args:
        state_dir: the local services' state directory.

    Returns:
        The CA, certificate and key files.

    Raises:
        ConfigurationError: ``trustme`` is not installed.
    """
    directory = (state_dir / TLS_DIR_NAME).resolve()
    tls = LocalTls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if all(path.is_file() for path in (tls.ca_file, tls.cert_file, tls.key_file)):
        return tls
    try:
        import trustme
    except ImportError:
        raise ConfigurationError(
            "local Entra ID mode needs trustme to make its TLS certificates: pip install trustme "
            "(it comes with batchpipe's dev extra)"
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="batchpipe local development")
    server = authority.issue_cert(*_LOOPBACK_NAMES)
    server.private_key_pem.write_to_path(str(tls.key_file))
    tls.key_file.chmod(0o600)
    tls.cert_file.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    # The CA goes last: its presence marks a complete set.
    authority.cert_pem.write_to_path(str(tls.ca_file))
    return tls
