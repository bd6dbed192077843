"""The running task processes of each node, and what they use: memory, disk I/O, the node directory's size.

Every task process runs in a session (and process group) of its own, whose leader the runner registers here
under its node's root directory while it runs. A measurement reads ``/proc`` (Linux): the resident memory and
the I/O counters (``/proc/<pid>/io``: ``read_bytes``/``write_bytes`` at the storage layer, ``syscr``/``syscw``
as operations) of every process in those groups. A container task is measured by its client process only
(the container's own processes belong to the runtime). Elsewhere the measurements read 0.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_PROC = Path("/proc")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: A node directory's measured size is reused for this many times as long as walking it took (at least
#: ``MIN_DISK_SIZE_TTL_SECONDS``), so that walking takes at most about 1% of the time.
DISK_SIZE_TTL_FACTOR = 100.0
MIN_DISK_SIZE_TTL_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class IoCounters:
    """Cumulative I/O of one process (bytes and operations)."""

    read_bytes: int = 0
    write_bytes: int = 0
    read_ops: int = 0
    write_ops: int = 0

    def minus(self, other: IoCounters) -> IoCounters:
        """What happened since ``other`` (counters never go back; a negative difference reads 0)."""
        return IoCounters(
            max(0, self.read_bytes - other.read_bytes),
            max(0, self.write_bytes - other.write_bytes),
            max(0, self.read_ops - other.read_ops),
            max(0, self.write_ops - other.write_ops),
        )

    def plus(self, other: IoCounters) -> IoCounters:
        """The sum."""
        return IoCounters(
            self.read_bytes + other.read_bytes,
            self.write_bytes + other.write_bytes,
            self.read_ops + other.read_ops,
            self.write_ops + other.write_ops,
        )


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """What a node's running task processes use now, and the I/O they did since the last committed reading."""

    memory_bytes: int = 0
    io: IoCounters = field(default_factory=IoCounters)
    disk_bytes: int = 0


class TaskProcesses:
    """Registry of running task process groups by node, and their measurement (thread-safe)."""

    def __init__(self) -> None:
        """An empty registry."""
        self._lock = threading.Lock()
        self._groups: dict[int, Path] = {}  # process group id (its leader's pid) -> node root
        # node root -> {(pid, start time): I/O counters at the last committed reading}
        self._seen: dict[Path, dict[tuple[int, str], IoCounters]] = {}
        self._disk: dict[Path, tuple[float, int]] = {}  # node root -> (when to measure again, bytes)

    def register(self, pgid: int, node_root: Path) -> None:
        """A task process group started on the node with this root directory."""
        with self._lock:
            self._groups[pgid] = node_root

    def unregister(self, pgid: int) -> None:
        """The group's leader ended."""
        with self._lock:
            self._groups.pop(pgid, None)

    def measure(self, node_roots: Iterable[Path], *, commit: bool) -> dict[Path, NodeUsage]:
        """Measure the task processes of these nodes.

        Args:
            node_roots: The nodes' root directories.
            commit: Record the I/O counters read, so that the next reading counts from here (a sample);
                False only looks (an evaluation between samples).

        Returns:
            Per node root, its usage (nodes without running tasks: memory and I/O 0, the directory's size).
        """
        roots = set(node_roots)
        with self._lock:
            groups = {pgid: root for pgid, root in self._groups.items() if root in roots}
        members = _group_members(set(groups)) if groups else {}
        memory: dict[Path, int] = {}
        io: dict[Path, IoCounters] = {}
        seen: dict[Path, dict[tuple[int, str], IoCounters]] = {root: {} for root in roots}
        with self._lock:
            previous = {root: self._seen.get(root, {}) for root in roots}
        for pgid, pids in members.items():
            root = groups[pgid]
            for pid, started in pids:
                memory[root] = memory.get(root, 0) + _resident_bytes(pid)
                counters = _io_counters(pid)
                seen[root][(pid, started)] = counters
                before = previous[root].get((pid, started), IoCounters())
                io[root] = io.get(root, IoCounters()).plus(counters.minus(before))
        if commit:
            with self._lock:
                self._seen.update(seen)  # processes gone since are forgotten
        return {
            root: NodeUsage(memory.get(root, 0), io.get(root, IoCounters()), self._disk_bytes(root)) for root in roots
        }

    def _disk_bytes(self, root: Path) -> int:
        start = time.monotonic()
        with self._lock:
            cached = self._disk.get(root)
        if cached is not None and start < cached[0]:
            return cached[1]
        size = directory_bytes(root)
        end = time.monotonic()
        ttl = max(MIN_DISK_SIZE_TTL_SECONDS, DISK_SIZE_TTL_FACTOR * (end - start))
        with self._lock:
            self._disk[root] = (end + ttl, size)
        return size


def directory_bytes(root: Path) -> int:
    """Bytes the files under ``root`` occupy on disk (allocated blocks; symbolic links not followed)."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _group_members(pgids: set[int]) -> dict[int, list[tuple[int, str]]]:
    """The live processes of these process groups: ``pgid -> [(pid, start time)]`` (zombies left out)."""
    members: dict[int, list[tuple[int, str]]] = {}
    try:
        names = os.listdir(_PROC)
    except OSError:
        return members
    for name in names:
        if not name.isdigit():
            continue
        try:
            stat = (_PROC / name / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "
        if len(fields) < 20 or fields[0] == "Z":
            continue
        pgid = int(fields[2])
        if pgid in pgids:
            members.setdefault(pgid, []).append((int(name), fields[19]))  # field 22: start time
    return members


def _resident_bytes(pid: int) -> int:
    try:
        return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return 0


def _io_counters(pid: int) -> IoCounters:
    try:
        text = (_PROC / str(pid) / "io").read_text()
    except OSError:
        return IoCounters()
    values = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    read_bytes, write_bytes, read_ops, write_ops = (
        int(values.get(name, "0")) for name in ("read_bytes", "write_bytes", "syscr", "syscw")
    )
    return IoCounters(read_bytes, write_bytes, read_ops, write_ops)


#: The process's registry (the node runner registers, the autoscale sampler measures).
TASK_PROCESSES = TaskProcesses()
