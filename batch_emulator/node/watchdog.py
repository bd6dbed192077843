"""One shared thread that ends task process groups on a wall-clock deadline or a cancel request.

Workers block in ``waitid`` on their own child; this thread only polls the cancel events of the
processes that are running (every :data:`POLL_SECONDS`) and sleeps until the nearest deadline, so
a task costs no extra thread. A worker unregisters its child *before* reaping it, and the watchdog
signals only registered children under the same lock, so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

POLL_SECONDS = 0.02

EndReason = Literal["timeout", "cancel"]


@dataclass(slots=True)
class Watch:
    """One running process group under watch."""

    pid: int
    deadline: float | None  # time.monotonic() value, or None
    cancel: threading.Event
    ended_by: EndReason | None = field(default=None)


class Watchdog:
    """Kills registered process groups whose deadline passed or whose cancel event is set."""

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._watches: dict[int, Watch] = {}
        self._thread: threading.Thread | None = None

    def register(self, pid: int, deadline: float | None, cancel: threading.Event) -> Watch:
        """Start watching the process group led by ``pid``.

        Args:
            pid: The group leader (started in its own session).
            deadline: ``time.monotonic()`` after which the group is killed, or ``None``.
            cancel: Set by the caller to have the group killed.

        Returns:
            The watch; its ``ended_by`` says whether the watchdog killed the group.
        """
        watch = Watch(pid, deadline, cancel)
        with self._lock:
            self._watches[pid] = watch
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-node-watchdog", daemon=True)
                self._thread.start()
            elif len(self._watches) == 1 or deadline is not None:
                self._lock.notify()
        return watch

    def unregister(self, pid: int) -> None:
        """Stop watching ``pid``; call it before reaping the child so its PID cannot be reused meanwhile.

        Args:
            pid: As given to :meth:`register`.
        """
        with self._lock:
            self._watches.pop(pid, None)

    def _run(self) -> None:
        with self._lock:
            while True:
                if not self._watches:
                    self._lock.wait()
                    continue
                now = time.monotonic()
                wait = POLL_SECONDS
                for watch in self._watches.values():
                    if watch.ended_by is not None:
                        continue
                    if watch.cancel.is_set():
                        self._kill(watch, "cancel")
                    elif watch.deadline is not None:
                        if watch.deadline <= now:
                            self._kill(watch, "timeout")
                        else:
                            wait = min(wait, watch.deadline - now)
                self._lock.wait(wait)

    @staticmethod
    def _kill(watch: Watch, reason: EndReason) -> None:
        watch.ended_by = reason
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is already gone
            os.killpg(watch.pid, signal.SIGKILL)


WATCHDOG = Watchdog()
