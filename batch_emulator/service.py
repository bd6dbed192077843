"""The local Batch service without its HTTP layer: one account, its store, scheduler and fault injection."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from batch_emulator.auth import SharedKeyVerifier
from batch_emulator.clock import ServiceClock
from batch_emulator.config import EmulatorConfig
from batch_emulator.faults import FaultInjector, FaultSpec
from batch_emulator.janitor import Janitor
from batch_emulator.models.account import Account
from batch_emulator.node.containers.runtime import RuntimeLocator
from batch_emulator.node.transfer import check_storage_endpoint
from batch_emulator.scheduler import Scheduler
from batch_emulator.store import Store
from batch_emulator.timefmt import now_ts

_log = logging.getLogger("batch_emulator")
FLUSH_INTERVAL_SECONDS = 0.1


class BatchService:
    """Everything behind the HTTP API of one local Batch service.

    The HTTP handlers use :attr:`account` under ``account.lock`` and call :meth:`persist` after
    creating or deleting resources; the scheduler's changes are saved by a background flusher.
    """

    def __init__(self, config: EmulatorConfig, data_dir: Path) -> None:
        """Load (or create) the account state under ``data_dir`` and prepare the scheduler.

        Args:
            config: Emulator settings.
            data_dir: Where state and node directories live.

        Raises:
            FaultSpecError: ``config.faults`` does not parse.
            ValueError: the account key is not base64.
        """
        self.config = config
        self.clock = ServiceClock(config.time_scale)
        self.data_dir = data_dir
        self.verifier = SharedKeyVerifier(config.account_name, config.account_key, allow_bearer=config.allow_bearer)
        self.startup_faults = FaultSpec.parse(config.faults)
        self.faults = FaultInjector(self.startup_faults)
        account_root = data_dir / "accounts" / config.account_name
        self.janitor = Janitor(account_root / "trash")
        self.store = Store(account_root / "batch.sqlite3")
        self.account = Account(config.account_name, account_root)
        self.account.storage_endpoint = check_storage_endpoint(config.storage_endpoint)
        self.account.containers = RuntimeLocator(config.container_runtime, data_dir / "containers")
        self.faults.apply_quotas(self.account.quotas)
        self.store.load(self.account, now_ts())
        self.scheduler = self._new_scheduler()
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="batch-store", daemon=True)
        self._batch_url = ""

    def _new_scheduler(self) -> Scheduler:
        scheduler = Scheduler(
            self.account,
            runner=self.config.runner,
            faults=self.faults,
            janitor=self.janitor,
            allocation_seconds=self.config.allocation_seconds,
            max_workers=self.config.max_workers,
            clock=self.clock,
        )
        scheduler.batch_url = getattr(self, "_batch_url", "")
        return scheduler

    def set_batch_url(self, url: str) -> None:
        """Tell tasks the account URL (``AZ_BATCH_ACCOUNT_URL``), known once the server is bound."""
        self._batch_url = url
        self.scheduler.batch_url = url

    def start(self) -> None:
        """Start looking for a container runtime, scheduling and background saving."""
        self.account.containers.start()
        self.scheduler.start()
        self._flusher.start()

    def stop(self) -> None:
        """Stop scheduling, stop running processes and save the final state."""
        self.scheduler.stop()
        self._stopping.set()
        if self._flusher.is_alive():
            self._flusher.join()
        self.store.flush(self.account)
        self.store.close()
        self.janitor.close()

    def persist(self) -> None:
        """Save pending changes now (creates and deletes are durable before they are answered)."""
        self.store.flush(self.account)

    def reset(self) -> None:
        """Forget all pools, jobs and tasks (running processes are stopped), restore the startup faults and keys."""
        self.scheduler.stop()
        self.verifier.reset_keys()
        with self.account.lock:
            self.account.clear()
            self.faults.replace(self.startup_faults)
            self.faults.apply_quotas(self.account.quotas)
        self.store.clear()
        self.janitor.discard(self.account.root / "pools")
        self.scheduler = self._new_scheduler()
        self.scheduler.start()

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            # Saving every change at once would cost a transaction per task state change; coalesce them.
            self._stopping.wait(FLUSH_INTERVAL_SECONDS)
            try:
                self.store.flush(self.account)
            except Exception:  # noqa: BLE001 - keep saving later; the next flush retries the same rows
                _log.exception("saving state failed")
