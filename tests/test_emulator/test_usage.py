"""Usage records: sums, persistence form, node core time and its split into usage-metric intervals."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_emulator.models.account import Account
from batch_emulator.models.stats import USAGE_INTERVAL_SECONDS, usage_metrics
from batch_emulator.usage import NO_USAGE, NodeLifetime, Usage


def test_usages_add_up_and_round_trip() -> None:
    total = Usage(user_cpu=1.5, wall=2.0, write_ops=3, write_bytes=1024) + Usage(kernel_cpu=0.25, read_ops=1)
    assert total == Usage(1.5, 0.25, 2.0, 1, 3, 0, 1024)
    assert Usage.from_list(total.to_list()) == total
    assert NO_USAGE + NO_USAGE == NO_USAGE


def test_core_time_of_a_node() -> None:
    node = NodeLifetime("p", "standard_d2s_v3", 2, True, start=100.0, end=400.0)
    assert node.core_seconds(0.0, 1000.0) == 600.0
    assert node.core_seconds(300.0, 1000.0) == 200.0
    assert node.core_seconds(500.0, 1000.0) == 0.0
    assert NodeLifetime("p", "standard_d2s_v3", 2, True, start=100.0).core_seconds(0.0, 200.0) == 200.0


def test_usage_metrics_split_core_hours_by_interval(tmp_path: Path) -> None:
    account = Account("acct", tmp_path)
    boundary = 100 * USAGE_INTERVAL_SECONDS
    account.node_lifetimes.append(NodeLifetime("p", "standard_d2s_v3", 2, True, boundary - 900, boundary + 1800))
    account.node_lifetimes.append(NodeLifetime("q", "standard_d4s_v3", 4, False, boundary + 60, boundary + 960))
    records = usage_metrics(account, boundary - 1800, boundary + 1800)
    hours = {(record["poolId"], record["start"]): record["hours"] for record in records}
    assert hours == {
        ("p", boundary - 1800): pytest.approx(0.5),
        ("p", boundary): pytest.approx(1.0),
        ("q", boundary): pytest.approx(1.0),
    }
