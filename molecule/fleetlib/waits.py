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


def problems_within(problems: Callable[[], list[str]], timeout: float, interval: float = 0.5) -> list[str]:
    """Poll until problems() lists none (an empty list) or timeout seconds pass (the last list: what a failing
    test says, from the same poll that failed, not from another read)."""
    seen: list[str] = []

    def none() -> bool:
        seen[:] = problems()
        return not seen

    return [] if wait_for(none, timeout, interval) else seen
