"""Find pools that batchpipe created and that sit idle (they cost money while they do nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from batchpipe.durations import DURATION_FORMS, parse_timedelta
from batchpipe.errors import ConfigurationError
from batchpipe.naming import wire_text

CREATED_BY_KEY = "created-by"
CREATED_BY_VALUE = "batchpipe"
BUSY_NODE_STATES = frozenset({"running", "starting", "waitingforstarttask", "creating", "rebooting", "reimaging"})


def parse_duration(text: str) -> timedelta:
    """Parse ``30m``, ``2h``, ``45s``, ``1d``, plain seconds or ISO 8601 (the settings' duration syntax).

    Raises:
        ConfigurationError: the text is not such a duration.
    """
    try:
        return parse_timedelta(text)
    except ValueError:
        raise ConfigurationError(f"--idle takes {DURATION_FORMS} (got {text!r})") from None


@dataclass(frozen=True)
class PoolStatus:
    """A batchpipe pool and how long it has been idle (None while busy)."""

    pool_id: str
    state: str
    nodes: int
    idle_since: datetime | None
    vm_size: str = ""


def created_by_batchpipe(pool: Any) -> bool:
    """True when the pool carries batchpipe's ``created-by`` metadata."""
    return any(item.name == CREATED_BY_KEY and item.value == CREATED_BY_VALUE for item in pool.metadata or [])


def pool_status(pool: Any, nodes: list[Any]) -> PoolStatus:
    """Derive whether a pool is idle, and since when, from its nodes.

    A pool is idle when no node is busy; it has been idle since the latest node state change (or the pool's
    last allocation change when it has no nodes).
    """
    states = [wire_text(n.state) for n in nodes]
    if any(state in BUSY_NODE_STATES for state in states) or wire_text(pool.allocation_state) == "resizing":
        idle_since = None
    else:
        times = [n.state_transition_time for n in nodes if n.state_transition_time]
        idle_since = max(times) if times else pool.allocation_state_transition_time or pool.creation_time
    return PoolStatus(pool.id, wire_text(pool.state), len(nodes), idle_since, str(pool.vm_size or ""))


def idle_longer_than(statuses: list[PoolStatus], idle: timedelta, now: datetime) -> list[PoolStatus]:
    """The pools idle for at least ``idle`` at ``now``."""
    return [s for s in statuses if s.idle_since is not None and now - s.idle_since >= idle and s.state == "active"]
