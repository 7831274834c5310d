"""How fast the machine was while `make test` ran: the same suite takes minutes longer on a slow day.

    python3 tools/machine_load.py start   # before make test: a benchmark, and the CPU counters
    python3 tools/machine_load.py end     # after it: one JSON object for .cache/make-test.json

`.ci/run` calls both. The benchmark is a fixed single-threaded workload, timed
(seconds: more is a slower core, or a core shared with other machines); the
counters are /proc/stat's, from start to end: how busy both cores were, and how
much time the hypervisor gave to others (steal). tools/test_timing.py shows them
beside each quoted run, so a slow run on a slow day can be told from a slower suite.
Standard library only: it runs before the virtualenv exists.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

START_FILE = Path(__file__).resolve().parent.parent / ".cache" / "machine-start.json"
# /proc/stat's first line: cpu user nice system idle iowait irq softirq steal ...
FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _workload() -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    block = b"\0" * (1 << 20)
    for _ in range(256):
        digest.update(block)
    total = 0
    for number in range(3_000_000):
        total += number % 7
    return time.perf_counter() - started


def benchmark() -> float:
    """Seconds for a fixed mix of hashing and interpreted Python, the median of three tries (docs/measurements.md
    quotes it on an idle machine)."""
    return round(statistics.median(_workload() for _ in range(3)), 3)


def cpu_counters(stat: str) -> dict[str, int]:
    """The machine's CPU time so far, in clock ticks, per kind (from /proc/stat's text)."""
    values = stat.splitlines()[0].split()[1:]
    return {name: int(value) for name, value in zip(FIELDS, values, strict=False)}


def load(start: dict[str, int], end: dict[str, int]) -> dict[str, float]:
    """Between two readings: the share of CPU time busy and stolen, in percent of all of it."""
    spent = {name: end[name] - start[name] for name in FIELDS if name in start and name in end}
    total = sum(spent.values()) or 1
    idle = spent.get("idle", 0) + spent.get("iowait", 0)
    steal = spent.get("steal", 0)
    return {"busy_pct": round(100 * (total - idle - steal) / total, 1), "steal_pct": round(100 * steal / total, 1)}


def read_stat() -> dict[str, int]:
    return cpu_counters(Path("/proc/stat").read_text())


def start() -> None:
    START_FILE.parent.mkdir(exist_ok=True)
    START_FILE.write_text(json.dumps({"benchmark_s": benchmark(), "counters": read_stat()}) + "\n")


def end() -> None:
    """Print the run's machine record; {} when start did not run (a run by hand)."""
    if not START_FILE.exists():
        print("{}")
        return
    began = json.loads(START_FILE.read_text())
    record = {"benchmark_s": [began["benchmark_s"], benchmark()], **load(began["counters"], read_stat())}
    print(json.dumps(record))


def main(argv: list[str]) -> int:
    actions = {"start": start, "end": end}
    if len(argv) != 1 or argv[0] not in actions:
        print(__doc__, file=sys.stderr)
        return 2
    actions[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
