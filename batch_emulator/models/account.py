"""One Batch account: its pools and jobs, quotas, and the change log persistence reads."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_emulator.catalog import Catalog, load_catalog
from batch_emulator.node.containers.runtime import RuntimeLocator
from batch_emulator.usage import NodeLifetime

if TYPE_CHECKING:
    from batch_emulator.models.jobs import Job
    from batch_emulator.models.nodes import Node
    from batch_emulator.models.pools import Pool
    from batch_emulator.models.schedules import Schedule
    from batch_emulator.models.tasks import Task


MAX_NODE_LIFETIMES = 100_000


@dataclass
class Quotas:
    """Account limits (Batch defaults are per region; these are generous development values)."""

    pools: int = 100
    active_jobs: int = 300
    dedicated_cores: int = 10_000
    low_priority_cores: int = 10_000
    #: Dedicated core quota per VM family (``standardDSv3Family``...); a family not listed has ``dedicated_cores``.
    family_cores: dict[str, int] = field(default_factory=dict)
    #: Whether allocation enforces the per-family quota (Azure's ``dedicatedCoreQuotaPerVMFamilyEnforced``).
    family_enforced: bool = False

    def family_quota(self, family: str) -> int:
        """The dedicated core quota of one VM family."""
        return self.family_cores.get(family, self.dedicated_cores)


@dataclass
class ChangeLog:
    """What changed since the last save: objects to upsert, and keys of removed ones (in order)."""

    pools: set[Pool] = field(default_factory=set)
    nodes: set[Node] = field(default_factory=set)
    jobs: set[Job] = field(default_factory=set)
    tasks: set[Task] = field(default_factory=set)
    schedules: set[Schedule] = field(default_factory=set)
    removals: list[tuple[str, ...]] = field(default_factory=list)

    def __bool__(self) -> bool:
        """True when anything awaits saving."""
        return bool(self.pools or self.nodes or self.jobs or self.tasks or self.schedules or self.removals)


@dataclass
class Stats:
    """Counters shown by ``/_emulator/stats``."""

    requests: int = 0
    tasks_completed: int = 0
    tasks_started: int = 0
    start_tasks_run: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the counters as JSON."""
        return {
            "requestsServed": self.requests,
            "tasksCompleted": self.tasks_completed,
            "tasksStarted": self.tasks_started,
            "startTasksRun": self.start_tasks_run,
        }


class Account:
    """All state of one Batch account; every access holds :attr:`lock`.

    The models change state and record follow-up work in the ``pending_*`` sets; the scheduler,
    woken through :meth:`notify`, performs it. Every change is also recorded in :attr:`changes`
    for the store.
    """

    def __init__(self, name: str, root: Path, *, catalog: Catalog | None = None) -> None:
        """Create an empty account.

        Args:
            name: The account name.
            root: Its directory (``<data_dir>/accounts/<name>``) holding node directories.
            catalog: Supported images and VM sizes (the packaged catalogue by default).
        """
        self.name = name
        self.root = root
        self.catalog = catalog or load_catalog()
        self.storage_endpoint: str | None = None  # where nodes reach production blob hosts (path-style)
        # The container runtime (podman or docker); the service replaces it with one honouring its config.
        self.containers = RuntimeLocator(None, root / "containers")
        self.lock = threading.RLock()
        self.quotas = Quotas()
        self.tags: dict[str, str] = {}  # the management plane's resource tags of the account
        self.pools: dict[str, Pool] = {}
        self.jobs: dict[str, Job] = {}
        self.schedules: dict[str, Schedule] = {}
        self.changes = ChangeLog()
        self.stats = Stats()
        self.pending_pools: set[Pool] = set()
        self.pending_jobs: set[Job] = set()
        self.pending_autoscale: set[Pool] = set()  # pools whose autoscale settings changed
        self.pending_schedules: set[Schedule] = set()  # job schedules to look at
        # Nodes that have left their pools, for pool statistics and usage metrics (in memory, bounded).
        self.node_lifetimes: deque[NodeLifetime] = deque(maxlen=MAX_NODE_LIFETIMES)
        self._seq = 0
        self._listener: Callable[[], None] = lambda: None

    def next_seq(self) -> int:
        """Return the next creation sequence number (orders listings and paging)."""
        self._seq += 1
        return self._seq

    def bump_seq(self, seen: int) -> None:
        """Make later sequence numbers larger than ``seen`` (used when loading saved state)."""
        self._seq = max(self._seq, seen)

    def set_listener(self, listener: Callable[[], None]) -> None:
        """Register the callback that wakes the scheduler."""
        self._listener = listener

    def notify(self) -> None:
        """Wake the scheduler: something it must act on changed."""
        self._listener()

    def pool_dir(self, pool_id: str) -> Path:
        """Directory of a pool's nodes."""
        return self.root / "pools" / pool_id

    def node_root(self, pool_id: str, node_id: str) -> Path:
        """Root directory of one node (holds ``shared/``, ``startup/``, ``workitems/``)."""
        return self.root / "pools" / pool_id / "nodes" / node_id

    def clear(self) -> None:
        """Forget every pool and job, and the account's tags (the caller stops running work first)."""
        self.tags = {}
        self.pools.clear()
        self.jobs.clear()
        self.schedules.clear()
        self.pending_schedules.clear()
        self.node_lifetimes.clear()
        self.pending_pools.clear()
        self.pending_jobs.clear()
        self.pending_autoscale.clear()
        self.changes = ChangeLog()
        self.stats = Stats()
