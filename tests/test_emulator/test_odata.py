"""The OData subset: $filter parsing and evaluation, $select, maxresults, skiptokens and nextLinks."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from batch_emulator.errors import InvalidQueryParameterValue
from batch_emulator.odata import (
    apply_select,
    dict_resolver,
    next_link,
    paginate,
    parse_filter,
    parse_max_results,
    parse_select,
    parse_skiptoken,
)

TASK: dict[str, Any] = {
    "id": "task-007",
    "state": "completed",
    "creationTime": "2026-11-25T13:29:26.123456Z",
    "executionInfo": {"result": "failure", "exitCode": 3, "retryCount": 0},
    "requiredSlots": 1,
}


def matches(expression: str, body: dict[str, Any] = TASK) -> bool:
    predicate = parse_filter(expression)
    assert predicate is not None
    return predicate(dict_resolver(body))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("state eq 'completed'", True),
        ("state eq 'Completed'", True),  # enum values compare case-insensitively
        ("state ne 'completed'", False),
        ("executionInfo/result eq 'failure'", True),
        ("executionInfo/exitCode eq 3", True),
        ("executionInfo/exitCode gt 2 and executionInfo/exitCode lt 4", True),
        ("executionInfo/exitCode ge 4", False),
        ("state eq 'active' or executionInfo/result eq 'failure'", True),
        ("state eq 'active' or (state eq 'completed' and requiredSlots le 1)", True),
        ("not (state eq 'completed')", False),
        ("startswith(id, 'task-')", True),
        ("endswith(id, '008')", False),
        ("contains(id, 'k-00')", True),
        ("substringof('007', id)", True),
        ("nodeInfo eq null", True),
        ("nodeInfo/nodeId eq 'x'", False),
        ("creationTime gt datetime'2026-11-25T00:00:00Z'", True),
        ("creationTime lt 2026-01-01T00:00:00Z", False),
        ("id eq 'it''s'", False),
        ("STATE EQ 'completed' AND id NE 'x'", False),  # property names are case-sensitive
    ],
)
def test_filter_evaluation(expression: str, expected: bool) -> None:
    assert matches(expression) is expected


def test_keywords_are_case_insensitive() -> None:
    assert matches("state EQ 'completed' AND id NE 'x'") is True


@pytest.mark.parametrize(
    "expression", ["state eq", "state eq 'x' and", "(state eq 'x'", "state ~ 'x'", "startswith(id"]
)
def test_malformed_filters_are_rejected(expression: str) -> None:
    with pytest.raises(InvalidQueryParameterValue) as caught:
        parse_filter(expression)
    assert caught.value.values[0] == ("QueryParameterName", "$filter")


def test_empty_filter_is_none() -> None:
    assert parse_filter(None) is None
    assert parse_filter("  ") is None


def test_select() -> None:
    names = parse_select("id, state,executionInfo/exitCode")
    assert names == frozenset({"id", "state", "executionInfo"})
    assert set(apply_select(TASK, names)) == {"id", "state", "executionInfo"}
    assert apply_select(TASK, parse_select(None)) is TASK


@pytest.mark.parametrize(("text", "value"), [(None, 1000), ("", 1000), ("1", 1), ("1000", 1000)])
def test_max_results(text: str | None, value: int) -> None:
    assert parse_max_results(text) == value


@pytest.mark.parametrize("text", ["0", "1001", "ten", "-5"])
def test_max_results_out_of_range(text: str) -> None:
    with pytest.raises(InvalidQueryParameterValue):
        parse_max_results(text)


def test_skiptoken() -> None:
    assert parse_skiptoken(None) == 0
    assert parse_skiptoken("s42") == 42
    with pytest.raises(InvalidQueryParameterValue):
        parse_skiptoken("tok+200/x==")


def test_paginate_resumes_after_the_last_item() -> None:
    items = list(range(1, 11))
    page, resume = paginate(items, seq=lambda item: item, after=0, limit=4, keep=lambda item: item % 2 == 0)
    assert (page, resume) == ([2, 4, 6, 8], 8)
    page, resume = paginate(items, seq=lambda item: item, after=8, limit=4, keep=lambda item: item % 2 == 0)
    assert (page, resume) == ([10], None)
    page, resume = paginate(items, seq=lambda item: item, after=0, limit=10, keep=lambda item: True)
    assert resume is None


def test_next_link_keeps_the_query_and_is_absolute() -> None:
    query = {"api-version": "2025-06-01", "$filter": "state eq 'a+b'", "maxresults": "60", "$skiptoken": "s1"}
    link = next_link("http://127.0.0.1:9", "/jobs/j%201/tasks", query, 120)
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:9", "/jobs/j%201/tasks")
    assert parse_qs(parts.query) == {
        "api-version": ["2025-06-01"],
        "$filter": ["state eq 'a+b'"],
        "maxresults": ["60"],
        "$skiptoken": ["s120"],
    }
    assert "+" not in parts.query
