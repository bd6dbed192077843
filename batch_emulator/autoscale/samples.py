"""Metric history: the samples the service records for a pool every sample period, and the
``GetSample``-family methods a formula calls on them.

Sample times are real timestamps. A look-back of ``w`` service seconds covers ``w / time_scale`` real
seconds, and ``w / SAMPLE_PERIOD_SECONDS`` samples are expected in it.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

#: Service seconds between two samples (Batch records metrics every 30 seconds).
SAMPLE_PERIOD_SECONDS = 30.0
#: Samples kept per pool: 6 hours of history (a pool's history then takes at most ~150 KB).
MAX_SAMPLES = 720
#: The read-only service variables whose values the service samples (canonical spelling).
METRIC_NAMES = (
    "$CPUPercent",
    "$WallClockSeconds",
    "$MemoryBytes",
    "$DiskBytes",
    "$DiskReadBytes",
    "$DiskWriteBytes",
    "$DiskReadOps",
    "$DiskWriteOps",
    "$NetworkInBytes",
    "$NetworkOutBytes",
    "$SampleNodeCount",
    "$ActiveTasks",
    "$RunningTasks",
    "$PendingTasks",
    "$SucceededTasks",
    "$FailedTasks",
    "$TaskSlotsPerNode",
    "$CurrentDedicatedNodes",
    "$CurrentLowPriorityNodes",
    "$UsableNodeCount",
    "$PreemptedNodeCount",
)


class SampleHistory:
    """The recorded samples of one pool: a time column and one value column per metric, bounded."""

    __slots__ = ("_columns", "_times", "max_samples")

    def __init__(self, names: Iterable[str], max_samples: int = MAX_SAMPLES) -> None:
        """Create an empty history for the metrics ``names``."""
        self.max_samples = max_samples
        self._times = array("d")
        self._columns = {name: array("d") for name in names}

    def __len__(self) -> int:
        """Number of samples kept."""
        return len(self._times)

    def record(self, timestamp: float, values: Mapping[str, float]) -> None:
        """Append one sample (metrics missing from ``values`` record 0); old samples fall off."""
        self._times.append(timestamp)
        for name, column in self._columns.items():
            column.append(float(values.get(name, 0.0)))
        if len(self._times) > self.max_samples + self.max_samples // 4:  # trim in bulk: amortised O(1)
            drop = len(self._times) - self.max_samples
            del self._times[:drop]
            for column in self._columns.values():
                del column[:drop]

    def _first_kept(self) -> int:
        return max(0, len(self._times) - self.max_samples)

    def latest(self, name: str, count: int) -> list[float]:
        """The last ``count`` samples of a metric, oldest first."""
        column = self._columns[name]
        start = max(self._first_kept(), len(column) - max(0, count))
        return column[start:].tolist()

    def between(self, name: str, start: float, end: float) -> list[float]:
        """Samples of a metric taken in ``[start, end]`` (real timestamps), oldest first."""
        first = max(self._first_kept(), bisect_left(self._times, start))
        last = bisect_right(self._times, end)
        return self._columns[name][first:last].tolist()

    def count(self) -> int:
        """Number of samples in the (bounded) history."""
        return len(self._times) - self._first_kept()

    def begin_time(self) -> datetime | None:
        """Time of the oldest sample kept, or None."""
        if not self.count():
            return None
        return datetime.fromtimestamp(self._times[self._first_kept()], UTC)


class Metric:
    """A read-only service variable (``$CPUPercent``, ``$ActiveTasks``…): a current value and its history."""

    __slots__ = ("current", "history", "name")

    def __init__(self, name: str, current: float, history: SampleHistory) -> None:
        """Create the view of metric ``name`` (``current`` is its value when used as a double)."""
        self.name = name
        self.current = current
        self.history = history
