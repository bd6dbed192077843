"""Which pools count as idle batchpipe pools (what `batchpipe pools prune` deletes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from batchpipe.errors import ConfigurationError
from batchpipe.pools import created_by_batchpipe, idle_longer_than, parse_duration, pool_status

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _pool(pool_id: str = "p", mine: bool = True, allocation: str = "steady") -> SimpleNamespace:
    metadata = [SimpleNamespace(name="created-by", value="batchpipe")] if mine else []
    return SimpleNamespace(
        id=pool_id,
        state="active",
        vm_size="standard_d2s_v3",
        metadata=metadata,
        allocation_state=allocation,
        allocation_state_transition_time=NOW - timedelta(hours=5),
        creation_time=NOW - timedelta(hours=6),
    )


def _node(state: str, minutes_ago: int) -> SimpleNamespace:
    return SimpleNamespace(state=state, state_transition_time=NOW - timedelta(minutes=minutes_ago))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", 1800), ("2h", 7200), ("45s", 45), ("1d", 86400), ("30", 30), ("1.5h", 5400), ("PT30M", 1800)],
)
def test_durations(text: str, expected: int) -> None:
    assert parse_duration(text).total_seconds() == expected


@pytest.mark.parametrize("text", ["m", "1w", "-5m", "soon"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"--idle takes seconds \(90\) or a duration such as 90s, 30m"):
        parse_duration(text)


def test_only_pools_with_batchpipe_metadata_are_ours() -> None:
    assert created_by_batchpipe(_pool())
    assert not created_by_batchpipe(_pool(mine=False))


def test_a_pool_is_idle_since_its_last_node_went_idle() -> None:
    status = pool_status(_pool(), [_node("idle", 90), _node("idle", 40)])
    assert status.idle_since == NOW - timedelta(minutes=40)
    assert status.vm_size == "standard_d2s_v3"
    assert [s.pool_id for s in idle_longer_than([status], timedelta(minutes=30), NOW)] == ["p"]
    assert idle_longer_than([status], timedelta(hours=1), NOW) == []


def test_busy_or_resizing_pools_are_never_idle() -> None:
    assert pool_status(_pool(), [_node("idle", 90), _node("running", 90)]).idle_since is None
    assert pool_status(_pool(allocation="resizing"), []).idle_since is None


def test_an_empty_pool_is_idle_since_its_last_allocation() -> None:
    assert pool_status(_pool(), []).idle_since == NOW - timedelta(hours=5)
