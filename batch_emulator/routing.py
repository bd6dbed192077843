"""Route matching on the raw request path (file paths arrive as one %2F-encoded segment)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from batch_emulator.errors import BatchError, InvalidUri

if TYPE_CHECKING:
    from starlette.responses import Response

    from batch_emulator.context import RequestContext

Handler = Callable[["RequestContext"], "Response"]
_PARAM = re.compile(r"\{(\w+)\}")


class UnsupportedHttpVerb(BatchError, status=405, message="The resource doesn't support the specified HTTP verb."):
    """The resource exists but not with this method."""


@dataclass(frozen=True)
class Route:
    """One operation: method, path template and handler."""

    method: str
    template: str
    handler: Handler
    admin: bool = False  # admin routes need no auth (loopback only) and see no injected faults
    arm: bool = False  # management-plane (ARM) routes: Bearer auth, ARM error bodies, case-insensitive paths
    regex: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Compile the template; ``{filePath}`` spans the rest of the path."""

        def group(match: re.Match[str]) -> str:
            name = match.group(1)
            return f"(?P<{name}>.+)" if name == "filePath" else f"(?P<{name}>[^/]+)"

        pattern = "^" + _PARAM.sub(group, re.escape(self.template).replace(r"\{", "{").replace(r"\}", "}")) + "$"
        object.__setattr__(self, "regex", re.compile(pattern, re.IGNORECASE if self.arm else 0))


class Router:
    """Finds the route of a request."""

    def __init__(self, routes: Iterable[Route]) -> None:
        """Create a router over ``routes`` (first match wins)."""
        self.routes = list(routes)

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """Match a request.

        Args:
            method: HTTP verb.
            raw_path: Path as received (percent-encoded); parameters are decoded after matching.

        Returns:
            The route and its decoded path parameters.

        Raises:
            UnsupportedHttpVerb: the path is known but not with this verb.
            InvalidUri: no operation has this path.
        """
        path = raw_path.rstrip("/") or "/"
        path_known = False
        for route in self.routes:
            found = route.regex.match(path)
            if found is None:
                continue
            if route.method != method:
                path_known = True
                continue
            return route, {name: unquote(value) for name, value in found.groupdict().items()}
        if path_known:
            raise UnsupportedHttpVerb()
        raise InvalidUri()
