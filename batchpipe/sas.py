"""Least-privilege shared access signatures for what the nodes download and upload.

Inputs and the node application get read-only blob SAS; the output container gets a SAS that can only create and
write blobs (no read, list or delete). All expire with the run's timeout. With Entra ID they are user-delegation SAS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)

# Clock skew between this machine and Storage: a SAS valid from "now" can be refused for a few minutes.
CLOCK_SKEW = timedelta(minutes=5)
# Storage refuses user-delegation keys valid for more than 7 days.
MAX_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class SasSigner:
    """Signs SAS tokens for one Storage account, with its key or with a user-delegation key."""

    account_name: str
    account_key: str | None
    delegation_key: UserDelegationKey | None
    starts: datetime
    expires: datetime

    @classmethod
    def for_client(cls, client: BlobServiceClient, lifetime: timedelta, account_key: str | None) -> SasSigner:
        """Create a signer valid for ``lifetime`` (capped at 7 days).

        Args:
            client: the Blob service client (its credential decides shared key vs. user delegation).
            lifetime: how long the SAS must stay valid (the run's timeout plus a margin).
            account_key: the account key, or None to request a user-delegation key (Entra ID).

        Returns:
            The signer.
        """
        now = datetime.now(UTC)
        starts, expires = now - CLOCK_SKEW, now + min(lifetime, MAX_LIFETIME - CLOCK_SKEW)
        delegation_key = None if account_key else client.get_user_delegation_key(starts, expires)
        return cls(str(client.account_name), account_key, delegation_key, starts, expires)

    def _credential(self) -> dict[str, Any]:
        if self.account_key:
            return {"account_key": self.account_key}
        return {"user_delegation_key": self.delegation_key}

    def blob_read_token(self, container: str, blob: str) -> str:
        """A token that can only read one blob."""
        return generate_blob_sas(
            self.account_name,
            container,
            blob,
            permission=BlobSasPermissions(read=True),
            start=self.starts,
            expiry=self.expires,
            **self._credential(),
        )

    def container_write_token(self, container: str) -> str:
        """A token that can only create and write blobs in one container (no read, list or delete)."""
        return generate_container_sas(
            self.account_name,
            container,
            permission=ContainerSasPermissions(create=True, write=True),
            start=self.starts,
            expiry=self.expires,
            **self._credential(),
        )


def with_token(url: str, token: str) -> str:
    """Append a SAS token to a blob or container URL."""
    return f"{url}?{token}"
