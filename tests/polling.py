"""Waiting in tests: poll a condition with a deadline (never a bare sleep as synchronisation)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 15.0, what: str = "condition", interval: float = 0.02
) -> T:
    """Poll ``condition`` until it returns something truthy and return that; fail the test after ``timeout`` seconds.

    Args:
        condition: What to poll.
        timeout: Seconds to wait at the most.
        what: What is awaited, for the failure message.
        interval: Seconds between polls.

    Returns:
        The first truthy value of ``condition``.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)  # polling interval of a condition with a deadline
