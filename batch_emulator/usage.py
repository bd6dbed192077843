"""What task runs and nodes used: CPU time, wall time, I/O, and node core time (for ``stats`` and usage metrics)."""

from __future__ import annotations

import resource
from dataclasses import astuple, dataclass

#: Bytes of one block in ``ru_inblock``/``ru_oublock``.
BLOCK_BYTES = 512


@dataclass(frozen=True, slots=True)
class Usage:
    """Resources used by one or more task runs (seconds and bytes)."""

    user_cpu: float = 0.0
    kernel_cpu: float = 0.0
    wall: float = 0.0
    read_ops: int = 0
    write_ops: int = 0
    read_bytes: int = 0
    write_bytes: int = 0

    def __add__(self, other: Usage) -> Usage:
        """The sum of two usages."""
        return Usage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    @classmethod
    def of_process(cls, usage: resource.struct_rusage) -> Usage:
        """CPU time and block I/O of a finished process (and the children it waited for), from ``wait4``."""
        return cls(
            user_cpu=usage.ru_utime,
            kernel_cpu=usage.ru_stime,
            read_ops=usage.ru_inblock,
            write_ops=usage.ru_oublock,
            read_bytes=usage.ru_inblock * BLOCK_BYTES,
            write_bytes=usage.ru_oublock * BLOCK_BYTES,
        )

    def to_list(self) -> list[float]:
        """The fields as a list (compact persistence)."""
        return list(astuple(self))

    @classmethod
    def from_list(cls, values: list[float]) -> Usage:
        """Inverse of :meth:`to_list`."""
        user, kernel, wall, read_ops, write_ops, read_bytes, write_bytes = values
        return cls(user, kernel, wall, int(read_ops), int(write_ops), int(read_bytes), int(write_bytes))


#: Nothing used (the default of records that carry a usage).
NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class NodeLifetime:
    """One node's time in a pool (for pool usage metrics); ``end`` None while it is in the pool."""

    pool_id: str
    vm_size: str
    cores: int
    dedicated: bool
    start: float
    end: float | None = None

    def core_seconds(self, start: float, end: float) -> float:
        """Core seconds the node spent in the pool between ``start`` and ``end``."""
        overlap = min(end, self.end if self.end is not None else end) - max(start, self.start)
        return max(0.0, overlap) * self.cores
