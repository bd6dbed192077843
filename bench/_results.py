"""What a benchmark returns, and how the suite renders it as markdown."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from bench._common import format_number, markdown_table


@dataclass
class Row:
    """One measured series: a case, its repetitions, and how it compares with its baseline and its goal.

    Attributes:
        case: what was measured (and on what).
        unit: the values' unit (``s``, ``tasks/s``, ``B``, ...).
        values: one value per repetition.
        versus: the ratio against the baseline, as text (``1.31x plain SDK``); empty for baselines.
        goal: the goal, as text; empty when there is none.
        met: True/False against the goal; None when there is no goal.
        digits: decimals for small values.
    """

    case: str
    unit: str
    values: list[float]
    versus: str = ""
    goal: str = ""
    met: bool | None = None
    digits: int = 2

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def cells(self) -> list[str]:
        """The row's cells: case, median, min-max, n, vs baseline, goal, status."""
        if not self.values:
            return [self.case, "-", "-", "0", self.versus, self.goal, _status(self.met)]
        low, high = min(self.values), max(self.values)
        unit = f" {self.unit}" if self.unit else ""
        median = f"{format_number(self.median, self.digits)}{unit}"
        spread = ""
        if len(self.values) > 1:
            spread = f"{format_number(low, self.digits)}\u2013{format_number(high, self.digits)}"
        return [self.case, median, spread, str(len(self.values)), self.versus, self.goal, _status(self.met)]


def _status(met: bool | None) -> str:
    if met is None:
        return ""
    return "met" if met else "**missed**"


@dataclass
class BenchResult:
    """A benchmark's outcome: its table, how it was measured, and notes (profiles, breakdowns).

    Attributes:
        name: the ``--only`` name.
        title: the section title.
        method: how it was measured (markdown).
        rows: the table.
        notes: more markdown (breakdowns, profiles, explanations of missed goals).
        params: sizes and repetitions, for the JSON record.
        elapsed_s: the benchmark's own wall time.
        raw: anything else worth keeping in the JSON record.
    """

    name: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    elapsed_s: float = 0.0
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def goals(self) -> list[Row]:
        return [row for row in self.rows if row.met is not None]

    def markdown(self) -> str:
        """The section: title, method, table, notes."""
        headers = ["case", "median", "spread (min\u2013max)", "n", "vs baseline", "goal", "status"]
        parts = [
            f"## {self.title}",
            "",
            self.method.strip().replace("``", "`"),
            "",
            markdown_table(headers, [row.cells() for row in self.rows]),
        ]
        parts += ["", f"Sizes and repetitions: {_params_text(self.params)}; took {self.elapsed_s:.0f} s."]
        for note in self.notes:
            if note.strip():
                parts += ["", note.strip().replace("``", "`")]
        return "\n".join(parts)

    def record(self) -> dict[str, Any]:
        """A JSON-friendly record of everything measured."""
        return {**asdict(self), "medians": {row.case: row.median for row in self.rows}}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> BenchResult:
        """Rebuild a result from :meth:`record` (to re-render a report without measuring again)."""
        fields = {key: value for key, value in record.items() if key != "medians"}
        fields["rows"] = [Row(**row) for row in record["rows"]]
        return cls(**fields)


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{key} = {value}" for key, value in params.items()) or "defaults"


def summary_table(results: list[BenchResult]) -> str:
    """One line per goal across benchmarks: the headline table at the top of docs/benchmarks.md."""
    rows = []
    for result in results:
        for row in result.goals:
            median = row.cells()[1]
            rows.append([result.title, row.case, median, row.versus, row.goal, _status(row.met)])
    return markdown_table(["benchmark", "case", "median", "vs baseline", "goal", "status"], rows)


def ratio_text(value: float, label: str, digits: int = 2) -> str:
    """``1.31x plain SDK``."""
    return f"{format_number(value, digits)}\u00d7 {label}"
