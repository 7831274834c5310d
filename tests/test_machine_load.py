"""The machine's load during a run, from /proc/stat's counters (tools/machine_load.py)."""

from __future__ import annotations

import machine_load

STAT = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"


def test_counters_are_read_from_the_first_line() -> None:
    counters = machine_load.cpu_counters(STAT)
    assert counters == {
        "user": 100, "nice": 0, "system": 50, "idle": 800, "iowait": 50, "irq": 0, "softirq": 0, "steal": 0,
    }  # fmt: skip


def test_busy_and_stolen_shares_are_of_the_time_between_two_readings() -> None:
    start = machine_load.cpu_counters(STAT)
    end = start | {"user": 400, "system": 150, "idle": 900, "steal": 100}
    # 300 user + 100 system busy, 100 idle, 100 stolen: of 600 ticks.
    assert machine_load.load(start, end) == {"busy_pct": 66.7, "steal_pct": 16.7}


def test_a_benchmark_takes_a_positive_time() -> None:
    assert machine_load.benchmark() > 0
