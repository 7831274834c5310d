"""Fixtures of the failover scenario's tests (the shared ones are in molecule/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import failover_results
import pytest


@pytest.fixture(scope="session")
def fresh_results() -> Path:
    """This verify run's results file, emptied once, before the first module that writes to it (in any order)."""
    failover_results.start_run()
    return failover_results.RESULTS
