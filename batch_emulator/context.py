"""What a handler gets: the parsed request and the service."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from batch_emulator.errors import InvalidRequestBody
from batch_emulator.models.validation import normalise_enums
from batch_emulator.wire_versions import LATEST, read_request

if TYPE_CHECKING:
    from batch_emulator.service import BatchService


@dataclass
class RequestContext:
    """One request as the handlers see it."""

    service: BatchService
    method: str
    raw_path: str
    raw_query: str
    query: dict[str, str]
    headers: Headers
    params: dict[str, str]
    request_id: str
    base_url: str  # the account URL as the client addresses it (resource URLs start with it)
    origin: str  # scheme and host only (the raw path already holds any account prefix)
    now: float
    client_host: str
    body: bytes = b""
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            InvalidRequestBody: empty or not JSON.
        """
        if self._json is None:
            if not self.body.strip():
                raise InvalidRequestBody("The request body is empty.")
            try:
                self._json = normalise_enums(read_request(json.loads(self.body)))
            except (ValueError, UnicodeDecodeError) as error:
                raise InvalidRequestBody(f"The request body is not valid JSON: {error}.") from error
        return self._json

    @property
    def api_version(self) -> str:
        """The request's api-version (checked by the routing middleware)."""
        return self.query.get("api-version", LATEST)

    def json_or_empty(self) -> Any:
        """The body as JSON, or ``{}`` when there is none (v14 sends some POSTs without a body)."""
        return self.json() if self.body.strip() else {}
