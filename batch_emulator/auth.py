"""SharedKey verification exactly as azure-batch signs (v15 ``BatchSharedKeyAuthPolicy``, v14 ``SharedKeyAuth``).

The signature covers the raw (still percent-encoded) path and the ``parse_qs``-decoded query, so this
module must see the request before anything decodes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from batch_emulator.errors import AuthenticationFailed

_log = logging.getLogger("batch_emulator.auth")

# Standard headers in the order they appear in the string to sign.
SIGNED_STANDARD_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)


def string_to_sign(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account_name: str) -> str:
    """Build the SharedKey string to sign of one request.

    Args:
        method: HTTP verb as sent (``GET``, ``POST``...).
        raw_path: The request path exactly as received, percent-encoding intact.
        raw_query: The query string as received (without ``?``).
        headers: Request headers with lower-cased names.
        account_name: The account named in the ``Authorization`` header.

    Returns:
        The string both sides sign.
    """
    present = {name: value for name, value in headers.items() if value}
    if method not in ("GET", "HEAD") and "content-length" not in present:
        present["content-length"] = "0"  # the SDK signs "0" when it sends no Content-Length
    text = method + "\n" + "\n".join(present.get(name, "") for name in SIGNED_STANDARD_HEADERS) + "\n"
    ocp = sorted((name, value) for name, value in present.items() if "ocp-" in name)
    text += "".join(f"{name}:{value}\n" for name, value in ocp)
    text += f"/{account_name}{raw_path}"
    query = parse_qs(raw_query)
    for name in sorted(query):
        value = query[name][0]
        if value:
            text += f"\n{name}:{value}"
    return text


def sign(key_base64: str, text: str) -> str:
    """Return base64(HMAC-SHA256(base64decode(key), utf8(text))).

    Raises:
        ValueError: the key is not base64.
    """
    try:
        key = base64.b64decode(key_base64, validate=True)
    except binascii.Error as error:
        raise ValueError("the account key is not base64") from error
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def derived_secondary_key(primary: str) -> str:
    """The secondary key of an account whose primary key is ``primary`` (stable across restarts)."""
    return base64.b64encode(hashlib.sha512(b"localbatch-secondary:" + primary.encode("ascii")).digest()).decode()


#: Audiences of Azure Batch tokens (v1 resource URI with and without the slash, and the Batch app id).
BATCH_AUDIENCES = frozenset(
    {"https://batch.core.windows.net/", "https://batch.core.windows.net", "ddbf3205-c6bd-46ae-8127-60eb93363864"}
)


def bearer_audience(token: str) -> str | None:
    """The ``aud`` claim of a JWT, read without checking its signature; None for an opaque token.

    Args:
        token: The Bearer token.

    Returns:
        The audience, or None when the token is not a JWT with an ``aud`` claim.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    audience = claims.get("aud") if isinstance(claims, dict) else None
    return audience if isinstance(audience, str) else None


@dataclass(frozen=True)
class Principal:
    """Who made an authenticated request."""

    scheme: str  # "SharedKey" or "Bearer"
    account_name: str


class SharedKeyVerifier:
    """Checks ``Authorization`` headers against one account (and, in development mode, Bearer tokens)."""

    def __init__(self, account_name: str, account_key: str, *, allow_bearer: bool = False) -> None:
        """Create a verifier.

        Args:
            account_name: The account this service serves.
            account_key: Its base64 key.
            allow_bearer: Accept Bearer tokens (development only: no signature check; a JWT naming an audience
                other than Azure Batch is refused, as Batch does).

        Raises:
            ValueError: the key is not base64.
        """
        sign(account_key, "")  # fail early on a malformed key
        self.account_name = account_name
        self.allow_bearer = allow_bearer
        self._configured_key = account_key
        #: The primary and secondary keys; either signs (the secondary is derived until regenerated).
        self.keys = {"primary": account_key, "secondary": derived_secondary_key(account_key)}

    def reset_keys(self) -> None:
        """Forget regenerated keys: back to the configured key and its derived secondary."""
        self.keys = {"primary": self._configured_key, "secondary": derived_secondary_key(self._configured_key)}

    def regenerate(self, which: str) -> str:
        """Replace the ``primary`` or ``secondary`` key with a new random one (requests signed with it fail)."""
        self.keys[which] = base64.b64encode(secrets.token_bytes(64)).decode("ascii")
        return self.keys[which]

    def verify(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str]) -> Principal:
        """Authenticate one request.

        Args:
            method: HTTP verb.
            raw_path: Raw request path.
            raw_query: Raw query string.
            headers: Request headers with lower-cased names.

        Returns:
            The authenticated principal.

        Raises:
            AuthenticationFailed: missing or malformed header, unknown account, wrong signature,
                a Bearer token while Bearer auth is off, or a JWT for another audience.
        """
        authorization = headers.get("authorization", "").strip()
        if not authorization:
            raise AuthenticationFailed("The Authorization header is missing.")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer":
            if not self.allow_bearer:
                raise AuthenticationFailed(
                    "Bearer tokens are accepted only when the local Batch service runs with --allow-bearer."
                )
            if not credentials.strip():
                raise AuthenticationFailed("The Bearer token is empty.")
            audience = bearer_audience(credentials.strip())
            if audience is not None and audience not in BATCH_AUDIENCES:
                raise AuthenticationFailed(
                    f"The Bearer token is for audience '{audience}', not Azure Batch "
                    "(request it for the scope https://batch.core.windows.net//.default)."
                )
            return Principal("Bearer", self.account_name)
        if scheme != "SharedKey":
            raise AuthenticationFailed(f"Unsupported authorization scheme '{scheme}'.")
        account, _, signature = credentials.strip().partition(":")
        if not account or not signature:
            raise AuthenticationFailed("The Authorization header is not 'SharedKey <account>:<signature>'.")
        if account != self.account_name:
            raise AuthenticationFailed(f"The account '{account}' does not exist on this service.")
        expected_text = string_to_sign(method, raw_path, raw_query, headers, account)
        signatures = [sign(key, expected_text) for key in self.keys.values()]
        if not any(hmac.compare_digest(expected, signature) for expected in signatures):
            _log.warning(
                "SharedKey signature mismatch for %s %s; the server signed this string: %r",
                method,
                raw_path,
                expected_text,
            )
            raise AuthenticationFailed(
                f"The MAC signature found in the HTTP request '{signature}' is not the same as any computed "
                "signature. The local Batch service logs the string it signed."
            )
        return Principal("SharedKey", account)
