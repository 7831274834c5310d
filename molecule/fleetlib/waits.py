"""Polling with a timeout, instead of sleeping: a test that waits for a state must be able to fail."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.5) -> bool:
    """Poll until predicate() is true or timeout seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
