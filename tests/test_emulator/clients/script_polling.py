"""Waiting in the client scripts, which run in other virtual environments (no pytest, no project imports).

The scripts import it from their own directory (the first entry of ``sys.path`` when a script is run by path).
"""

import time


def wait(condition, what, timeout=60.0):
    """Poll ``condition`` until it returns something truthy and return that; exit the script after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling interval of a condition with a deadline
