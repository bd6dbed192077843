"""Removes directories in the background: a directory is first renamed into a trash folder (fast, atomic),
so an id that is re-used at once never sees the old files."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import uuid
from pathlib import Path

_log = logging.getLogger("batch_emulator.janitor")


class Janitor:
    """One background thread deleting discarded directories."""

    def __init__(self, trash: Path) -> None:
        """Create the janitor; ``trash`` is emptied of leftovers first.

        Args:
            trash: A directory on the same filesystem as the discarded ones.
        """
        self._trash = trash
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="batch-janitor", daemon=True)
        if trash.exists():
            for leftover in trash.iterdir():
                self._queue.put(leftover)
        self._thread.start()

    def discard(self, path: Path) -> None:
        """Move ``path`` out of the way now and delete it later (no error when it does not exist)."""
        try:
            self._trash.mkdir(parents=True, exist_ok=True)
            target = self._trash / uuid.uuid4().hex
            path.rename(target)
        except FileNotFoundError:
            return
        except OSError:
            _log.warning("could not move %s to the trash; deleting it in place", path)
            target = path
        self._queue.put(target)

    def close(self, wait: bool = True) -> None:
        """Stop the thread after the queued deletions (when ``wait``)."""
        self._queue.put(None)
        if wait:
            self._thread.join()

    def _work(self) -> None:
        while (path := self._queue.get()) is not None:
            shutil.rmtree(path, ignore_errors=True)
