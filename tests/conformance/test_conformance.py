"""The local Batch service answers Microsoft's recorded real-service traffic the way the real service did.

Every difference in an operation the service implements must be explained (documented, or owned by issue
13/14); ``python -m tests.conformance.report`` writes the figures to docs/emulator-conformance.md.
"""

from __future__ import annotations

import pytest

from tests.conformance.known import explain
from tests.conformance.replay import Exchange, Outcome, compare, compare_error, operation_of
from tests.conformance.report import Summary, render, replay

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def summary() -> Summary:
    """One replay of every vendored recording (about 15 s)."""
    return replay()


def test_every_difference_is_explained(summary: Summary) -> None:
    unexplained = [
        f"{item.outcome.exchange.recording}#{item.outcome.exchange.index} {item.outcome.operation}: "
        + "; ".join(item.outcome.differences)
        for item in summary.unexplained
    ]
    assert unexplained == []


def test_implemented_operations_match_the_recordings(summary: Summary) -> None:
    matched = {item.outcome.operation for item in summary.judged if not item.outcome.differences}
    assert {"create_pool", "get_pool", "list_pools", "node_counts", "resize_pool", "stop_resize"} <= matched
    report = render(summary)
    assert "| `create_pool` |" in report
    assert "unexplained" in report


def test_shape_comparison_reports_what_a_client_would_notice() -> None:
    recorded = {"state": "active", "resizeTimeout": "PT15M", "id": "a", "nested": {"caching": "none"}}
    assert (
        compare(recorded, {"state": "Active", "resizeTimeout": "PT15M", "id": "b", "nested": {"caching": "None"}}) == []
    )
    differences = compare(recorded, {"state": "deleting", "resizeTimeout": "PT1H", "id": 3, "extra": 1, "nested": {}})
    assert differences == [
        "state: expected 'active', got 'deleting'",
        "resizeTimeout: expected 'PT15M', got 'PT1H'",
        "id: expected str 'a', got number 3",
        "nested.caching: missing",
        "extra: sent only by the local service",
    ]
    assert compare({"allocationState": "resizing"}, {"allocationState": "steady"}) == []  # compressed timing


def test_error_comparison_checks_code_and_named_property() -> None:
    recorded = {
        "code": "InvalidPropertyValue",
        "values": [{"key": "PropertyName", "value": "vmSize"}, {"key": "Reason", "value": "x"}],
    }
    ours = {
        "code": "InvalidPropertyValue",
        "values": [{"key": "PropertyName", "value": "imageReference"}, {"key": "Reason", "value": "y"}],
    }
    assert compare_error(recorded, ours) == ["values.PropertyName: expected 'vmSize', got 'imageReference'"]


def test_a_501_and_what_follows_from_it_belong_to_the_next_issue() -> None:
    create = Exchange("r", 0, "POST", "/jobs?api-version=2025-06-01", {"id": "j1"}, 201, None)
    get = Exchange("r", 1, "GET", "/jobs/j1?api-version=2025-06-01", None, 200, {})
    assert operation_of("GET", get.uri) == "get_job"
    assert (
        explain(Outcome(create, "create_job", 501, ["status"]), set())
        == "issue 13/14: the local service answers 501 NotImplemented to this create_job request"
    )
    assert explain(Outcome(get, "get_job", 404, ["status"]), {"j1"}) is not None
    assert explain(Outcome(get, "get_job", 404, ["status"]), set()) is None
