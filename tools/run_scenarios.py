"""Run Molecule scenarios side by side, each with its own log, and summarise.

`make molecule` calls this. Scenarios use their own containers and Docker
networks, so several can run at once; most of their time is spent waiting
(packages downloading, brokers booting, faults being observed), not on the CPU.
Each scenario's output goes to .cache/molecule-logs/<scenario>.log and is
printed whole when the scenario ends, so parallel output never interleaves.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LOG_DIR = Path(__file__).resolve().parent.parent / ".cache" / "molecule-logs"
# One scenario's log is printed at a time.
_print_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    scenario: str
    returncode: int
    seconds: float
    log: Path

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    @property
    def result(self) -> str:
        return "passed" if self.passed else "FAILED"


def run(scenario: str, log_dir: Path = LOG_DIR) -> Outcome:
    log = log_dir / f"{scenario}.log"
    start = time.monotonic()
    with log.open("w") as output:
        process = subprocess.run(
            ["molecule", "test", "--scenario-name", scenario], stdout=output, stderr=subprocess.STDOUT, check=False
        )
    outcome = Outcome(scenario, process.returncode, time.monotonic() - start, log)
    with _print_lock:
        print(f"===== {scenario}: {outcome.result} in {outcome.seconds:.0f} s =====")
        print(log.read_text(), flush=True)
    return outcome


def summary(outcomes: list[Outcome]) -> list[str]:
    rows = [f"{'scenario':<16} {'result':<7} {'seconds':>7}"]
    rows += [f"{o.scenario:<16} {o.result:<7} {o.seconds:>7.0f}" for o in outcomes]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2, help="scenarios running at once")
    parser.add_argument("scenarios", nargs="+", help="started in this order as places free up")
    args = parser.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        outcomes = list(pool.map(run, args.scenarios))
    print("\n".join(summary(outcomes)))
    return 0 if all(outcome.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
