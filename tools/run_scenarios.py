"""Run Molecule scenarios side by side, show each one's steps as they happen, and time them.

`make molecule` calls this. Scenarios use their own containers and Docker
networks, so several can run at once; most of their time is spent waiting
(brokers booting, faults being observed), not on the CPU.

Converges are the exception: a converge keeps both cores busy, so two side by
side each took about as long as both one after the other (failover 215 s and
roles 313 s alone, about 500 s each together). They therefore take turns, in
the order the scenarios are listed: the first (the longest lane) converges
alone and goes on to its tests about 300 s sooner (failover's converge: 492 s
beside roles' in 9dcde65's fresh-clone run, 190 and 192 s alone in c2bce62's
two), and the next one loses nothing (roles' converge ended 619 and 649 s into
those two runs, about 650 s into 9dcde65's).

To make a turn something to wait for, each scenario's test_sequence (its
molecule.yml) is run one step at a time, `molecule <step>` with
.config/molecule/one-step.yml on top of the project's base config, so that each
command runs its own step only; after a failed step only the destroy steps run,
as `molecule test` does. The wait shows as a step of its own, "turn".

A scenario whose converge is light (NO_TURN) takes no turn.

The first scenario listed is the longest lane, and its tests mostly wait on
faults. Every other lane (and the checks) runs at a lower CPU priority: its
commands on the control node at LANE_NICE, its containers, once created, with
LANE_CPU_SHARES of Docker's CPU weight (1024 by default). It takes the CPU
the long lane leaves, instead of stretching that lane's waits. Alone, a
scenario runs as fast as ever: priority only decides who waits when both want
a core.

`--checks CMD` (make test's lint and unit tests) runs CMD in the first lane
that frees up once every scenario has started (after testhosts, in make
test's order), not from the start: its 40 CPU-seconds then come while the
failover scenario's tests mostly wait, instead of while it creates its hosts
and converges, when both cores are busy and every second counts in the run's
length. Its output goes to .cache/molecule-logs/checks.log, printed whole if
it fails; it counts in the result like a scenario.

Each scenario's output goes to .cache/molecule-logs/<scenario>.log. While the
scenarios run, one line is printed whenever one starts or ends, or starts or
ends a Molecule step (found by Molecule's own markers in that output), with the
seconds since the run began:

    [  312 s] failover      converge finished in 241 s

A failing scenario's log is printed whole as soon as it ends, in one piece; a
passing one's is only named. At the end come each scenario's result and the
seconds of each of its steps, with verify's seconds per test module (each
test's own seconds are in the JSON), which also go to .cache/molecule-timing.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent
CACHE_DIR = PROJECT_DIR / ".cache"
LOG_DIR = CACHE_DIR / "molecule-logs"
TIMING_FILE = CACHE_DIR / "molecule-timing.json"
MOLECULE_DIR = PROJECT_DIR / "molecule"
BASE_CONFIGS = [PROJECT_DIR / ".config" / "molecule" / name for name in ("config.yml", "one-step.yml")]
# The steps that keep both cores busy, taken in turns.
TURN_STEPS = frozenset({"converge"})
# Scenarios whose converge needs no turn: testhosts' converges nothing (2 s).
NO_TURN = frozenset({"testhosts"})
# The niceness of every lane but the first (the longest), and its containers' CPU weight: about an eighth each.
LANE_NICE = 10
LANE_CPU_SHARES = 128

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Molecule (26) logs the start and end of each step, after a log level, as
# "INFO     haproxy ➜ converge: Executing" with colours on, or
# "INFO     [haproxy > converge] Executing" with them off; the end says
# "Executed: Successful" (or Failed, Skipped, ...). Its recap at the very end
# repeats the end lines without a level, which must not count twice.
_STEP = re.compile(
    r"^[A-Z]+ +(?:\S+ ➜ (?P<arrow>\w+):|\[\S+ > (?P<bracket>\w+)\]) "
    r"(?:(?P<executing>Executing)|Executed: (?P<result>.+))$"
)
# pytest -v (testinfra, in verify) ends each test's line with its outcome and
# the progress so far: "tests/test_x.py::test_y[ansible://host] PASSED [ 14%]".
# Wrapped right after the outcome, the rejoined pieces have no space before "[".
_TEST = re.compile(r"(?P<outcome>PASSED|FAILED|ERROR) *\[ *\d+%\]$")
# Molecule frames command output ("  │ ...") and wraps it at the terminal's
# width (COLUMNS when there is none), indenting a wrapped line's rest by two
# more spaces. A wide COLUMNS keeps most lines whole; the rest are rejoined.
_CONTINUED = re.compile(r"^ *│ {3}")
_COLUMNS = "200"


@dataclass(frozen=True)
class CaseTiming:
    # pytest's id, e.g. "tests/test_failover.py::test_case[crash-elsewhere]".
    test: str
    # From the previous test's outcome (or verify's start) to this one's: fixtures set up on the way count here.
    seconds: float
    outcome: str

    @property
    def module(self) -> str:
        return self.test.split("::")[0]


@dataclass(frozen=True)
class StepTiming:
    step: str
    seconds: float
    # Molecule's word in lower case (successful, failed, skipped, ...), or
    # "unfinished" when Molecule exited during the step.
    result: str
    tests: tuple[CaseTiming, ...] = ()


def plain(line: str) -> str:
    """A line of Molecule output without colours, the frame around command output, or surrounding blanks."""
    return _ANSI.sub("", line).strip().removeprefix("│").strip()


@dataclass
class StepTracker:
    """Follows one scenario's Molecule output: the step running, the steps done, verify's test outcomes."""

    steps: list[StepTiming] = field(default_factory=list)
    current: str | None = None
    since: float = 0.0
    # Verify's tests so far, and when the last one ended.
    test_timings: list[CaseTiming] = field(default_factory=list)
    last_test_end: float = 0.0
    # The framed line being read in verify, its wrapped pieces joined.
    framed: str = ""

    @property
    def tests(self) -> Counter[str]:
        """Every test outcome seen so far, as pytest prints it (PASSED, FAILED, ERROR)."""
        seen = [*(test for step in self.steps for test in step.tests), *self.test_timings]
        return Counter(test.outcome.upper() for test in seen)

    def feed(self, line: str, now: float) -> list[str]:
        """What to report about this line, read at `now` (seconds): a step started or ended, a test failed."""
        text = plain(line)
        if step := _STEP.match(text):
            if step["executing"]:
                return self._start(step["arrow"] or step["bracket"], now)
            # "Missing playbook (Remove from test_sequence to suppress)": the words before the advice.
            return self._end(step["result"].split(" (")[0].lower(), now)
        if self.current == "verify":
            return self._test(text, now, continued=bool(_CONTINUED.match(_ANSI.sub("", line))))
        return []

    def _test(self, text: str, now: float, continued: bool) -> list[str]:
        """Count a test's outcome; a failed test is worth a line of its own."""
        # Wrapping splits a test's name mid-word, so the pieces join without a space.
        self.framed = self.framed + text if continued else text
        test = _TEST.search(self.framed)
        if test is None:
            return []
        name = self.framed[: test.start()].strip()
        self.test_timings.append(CaseTiming(name, now - self.last_test_end, test["outcome"].lower()))
        self.last_test_end = now
        return [] if test["outcome"] == "PASSED" else [f"verify: {test['outcome']} {name}"]

    def close(self, now: float) -> list[str]:
        """Molecule has exited: a step still open ends unfinished (a dependency failure leaves no end marker)."""
        return self._end("unfinished", now)

    def _start(self, step: str, now: float) -> list[str]:
        events = self._end("unfinished", now)
        self.current, self.since, self.last_test_end = step, now, now
        return [*events, f"{step} started"]

    def _end(self, result: str, now: float) -> list[str]:
        if self.current is None:
            return []
        tests = tuple(self.test_timings) if self.current == "verify" else ()
        timing = StepTiming(self.current, now - self.since, result, tests)
        self.steps.append(timing)
        self.current, self.test_timings = None, []
        return [describe(timing)]


def describe(timing: StepTiming) -> str:
    """One step's end in a few words, e.g. "converge finished in 241 s"."""
    if timing.result == "successful":
        text = f"{timing.step} finished in {timing.seconds:.0f} s"
    elif timing.result == "failed":
        text = f"{timing.step} FAILED after {timing.seconds:.0f} s"
    else:
        text = f"{timing.step} ended ({timing.result}) after {timing.seconds:.0f} s"
    if timing.tests:
        outcomes = Counter(test.outcome for test in timing.tests)
        text += f" (tests: {outcomes['passed']} passed, {outcomes['failed'] + outcomes['error']} failed)"
    return text


class Console:
    """Prints whole lines and blocks, one at a time, flushed at once (CI shows them live)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def line(self, scenario: str, text: str) -> None:
        self.block(f"[{self.elapsed():>5.0f} s] {scenario:<13} {text}")

    def block(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)


@dataclass(frozen=True)
class Outcome:
    scenario: str
    returncode: int
    seconds: float
    log: Path
    steps: tuple[StepTiming, ...] = ()

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    @property
    def result(self) -> str:
        return "passed" if self.passed else "FAILED"


def molecule_env() -> dict[str, str]:
    # Unbuffered, so each line reaches the log (and the step markers us) when
    # Molecule writes it, in the order written.
    return os.environ | {"PYTHONUNBUFFERED": "1", "COLUMNS": _COLUMNS}


class Turns:
    """CPU-bound steps one scenario at a time, in the order the scenarios are listed.

    A scenario's turn comes once every scenario listed before it has had its own
    (or ended without one) and nobody else holds one. Scenarios start in list
    order, so the one waited for is always running: no turn is waited for forever.
    """

    def __init__(self, order: list[str]) -> None:
        self._order = order
        self._done: set[str] = set()
        self._holder: str | None = None
        self._changed = threading.Condition()

    def _ahead_of(self, scenario: str) -> str:
        """Who holds the turn, or is due one before this scenario ("" if nobody); the caller holds the lock."""
        if self._holder is not None:
            return self._holder
        before = self._order[: self._order.index(scenario)]
        return next((name for name in before if name not in self._done), "")

    @contextlib.contextmanager
    def turn(self, scenario: str) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._ahead_of(scenario))
            self._holder = scenario
        try:
            yield
        finally:
            self.done(scenario)

    def waiting_on(self, scenario: str) -> str:
        """Who has a turn or is due one before this scenario ("" if nobody)."""
        with self._changed:
            return self._ahead_of(scenario)

    def done(self, scenario: str) -> None:
        """The scenario has had its turn, or ended: the next may go."""
        with self._changed:
            self._done.add(scenario)
            if self._holder == scenario:
                self._holder = None
            self._changed.notify_all()


def scenario_config(scenario: str) -> dict[str, Any]:
    """The scenario's molecule.yml."""
    config: dict[str, Any] = yaml.safe_load((MOLECULE_DIR / scenario / "molecule.yml").read_text())
    return config


def test_sequence(scenario: str) -> list[str]:
    """The scenario's steps, from its molecule.yml (every scenario here names them)."""
    return list(scenario_config(scenario)["scenario"]["test_sequence"])


def molecule_step(scenario: str, step: str) -> list[str]:
    base = [arg for config in BASE_CONFIGS for arg in ("--base-config", str(config))]
    return ["molecule", *base, step.replace("_", "-"), "--scenario-name", scenario]


def run(
    scenario: str,
    console: Console,
    log_dir: Path = LOG_DIR,
    turns: Turns | None = None,
    sequence: list[str] | None = None,
    nice: int = 0,
) -> Outcome:
    """One scenario's test sequence, step by step (converge in its turn), the output copied line by line to its
    log and read for step markers. After a failed step only the destroy steps run, as in `molecule test`."""
    log = log_dir / f"{scenario}.log"
    turns = turns or Turns([scenario])
    tracker = StepTracker()
    start = time.monotonic()
    console.line(scenario, "started")
    returncode = 0
    try:
        with log.open("w", buffering=1) as output:
            steps = sequence or test_sequence(scenario)
            for index, step in enumerate(steps):
                if returncode and step != "destroy":
                    continue
                if step == "destroy" and "create" in steps[index:] and nothing_to_destroy(scenario):
                    tracker.steps.append(StepTiming("destroy", 0.0, "skipped"))
                    console.line(scenario, "destroy: skipped, nothing of the scenario exists")
                    continue
                in_turn = step in TURN_STEPS and scenario not in NO_TURN
                with wait_for_turn(scenario, turns, tracker, console) if in_turn else contextlib.nullcontext():
                    code = run_step(scenario, step, output, tracker, console, nice)
                returncode = returncode or code
                if step == "create" and nice and not code:
                    lower_cpu_weight(scenario, output)
    finally:
        turns.done(scenario)
    outcome = Outcome(scenario, returncode, time.monotonic() - start, log, tuple(tracker.steps))
    report(outcome, console)
    return outcome


@contextlib.contextmanager
def wait_for_turn(scenario: str, turns: Turns, tracker: StepTracker, console: Console) -> Iterator[None]:
    """Hold the scenario's turn while inside; a wait for it is reported and timed as a step, "turn"."""
    other = turns.waiting_on(scenario)
    if other:
        console.line(scenario, f"turn: waiting for {other}'s converge")
    since = time.monotonic()
    with turns.turn(scenario):
        if other:
            waited = StepTiming("turn", time.monotonic() - since, "successful")
            tracker.steps.append(waited)
            console.line(scenario, f"turn: waited {waited.seconds:.0f} s")
        yield


def nothing_to_destroy(scenario: str) -> bool:
    """Whether Molecule holds no instance of the scenario as created and Docker has no container of that name:
    then the first destroy, which on a clean machine spends half a minute finding nothing, is skipped."""
    listed = subprocess.run(
        [*molecule_step(scenario, "list"), "--format", "plain"],
        capture_output=True, text=True, check=False, env=molecule_env(),
    )  # fmt: skip
    rows = [line.split() for line in listed.stdout.splitlines() if line.strip()]
    if listed.returncode or not rows or any(len(row) < 6 or row[4] != "false" for row in rows):
        return False
    containers = subprocess.run(
        ["docker", "ps", "--all", "--format", "{{.Names}}"], capture_output=True, text=True, check=False
    )
    return containers.returncode == 0 and not {row[0] for row in rows} & set(containers.stdout.split())


def platform_names(scenario: str) -> list[str]:
    """The scenario's containers, by the names its molecule.yml gives them."""
    return [platform["name"] for platform in scenario_config(scenario)["platforms"]]


def lower_cpu_weight(scenario: str, output: TextIO) -> None:
    """The scenario's containers at LANE_CPU_SHARES (Molecule's platform schema has no such setting)."""
    command = ["docker", "update", "--cpu-shares", str(LANE_CPU_SHARES), *platform_names(scenario)]
    output.write(" ".join(command) + "\n")
    updated = subprocess.run(command, capture_output=True, text=True, check=False)
    output.write(updated.stdout + updated.stderr)


def niced(command: list[str], nice: int) -> list[str]:
    """The command at that niceness (its children inherit it)."""
    return ["nice", "-n", str(nice), *command] if nice else command


def run_step(scenario: str, step: str, output: TextIO, tracker: StepTracker, console: Console, nice: int = 0) -> int:
    """`molecule <step>` for the scenario, its output appended to the log and read for markers; its exit code."""
    command = niced(molecule_step(scenario, step), nice)
    output.write(" ".join(command) + "\n")
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", env=molecule_env()
    ) as process:
        for line in process.stdout or ():
            output.write(line)
            for event in tracker.feed(line, time.monotonic()):
                console.line(scenario, event)
    # A step Molecule left without an end marker (a failing dependency command) ends with its command.
    for event in tracker.close(time.monotonic()):
        console.line(scenario, event)
    return process.returncode


def run_checks(command: str, console: Console, log_dir: Path = LOG_DIR, name: str = "checks", nice: int = 0) -> Outcome:
    """A shell command in a lane of its own (make test's lint and unit tests), its output to <log_dir>/<name>.log."""
    log = log_dir / f"{name}.log"
    start = time.monotonic()
    console.line(name, f"started: {command}")
    with log.open("w") as output:
        shell = niced(["sh", "-c", command], nice)
        finished = subprocess.run(shell, stdout=output, stderr=subprocess.STDOUT, check=False)
    returncode = finished.returncode
    outcome = Outcome(name, returncode, time.monotonic() - start, log)
    report(outcome, console)
    return outcome


def report(outcome: Outcome, console: Console) -> None:
    """A passing scenario's log is only named; a failing one's is printed whole, in one block."""
    ended = f"{outcome.result} in {outcome.seconds:.0f} s, log: {outcome.log}"
    if outcome.passed:
        console.line(outcome.scenario, ended)
        return
    console.block(
        f"===== {outcome.scenario}: {ended} =====\n"
        f"{outcome.log.read_text(errors='replace').rstrip()}\n"
        f"===== end of {outcome.scenario}'s log ====="
    )


def summary(outcomes: list[Outcome]) -> list[str]:
    rows = [f"{'scenario':<16} {'result':<7} {'seconds':>7}"]
    rows += [f"{o.scenario:<16} {o.result:<7} {o.seconds:>7.0f}" for o in outcomes]
    return rows


def module_seconds(tests: tuple[CaseTiming, ...]) -> dict[str, float]:
    """Seconds per test module, in the order the modules ran."""
    seconds: dict[str, float] = {}
    for test in tests:
        seconds[test.module] = seconds.get(test.module, 0.0) + test.seconds
    return seconds


def timing_rows(outcomes: list[Outcome], wall_seconds: float) -> list[str]:
    """Each scenario's steps in the order run (verify's test modules under it), its total, and the wall time."""
    rows = [f"{'scenario':<16} {'step':<12} {'seconds':>7}"]
    for o in outcomes:
        for s in o.steps:
            note = "" if s.result == "successful" else f"  {s.result}"
            rows.append(f"{o.scenario:<16} {s.step:<12} {s.seconds:>7.0f}{note}")
            rows += [f"{'':<18}{seconds:>7.0f}  {module}" for module, seconds in module_seconds(s.tests).items()]
        rows.append(f"{o.scenario:<16} {'total':<12} {o.seconds:>7.0f}")
    rows.append(f"{'wall time':<29} {wall_seconds:>7.0f}")
    return rows


def step_record(step: StepTiming) -> dict[str, Any]:
    record = asdict(step) | {"seconds": round(step.seconds, 1)}
    record["tests"] = [asdict(t) | {"seconds": round(t.seconds, 1)} for t in step.tests]
    if not step.tests:
        del record["tests"]
    return record


def timing_record(outcomes: list[Outcome], wall_seconds: float) -> dict[str, Any]:
    """The timing table as JSON, seconds to a tenth."""
    return {
        "wall_seconds": round(wall_seconds, 1),
        "scenarios": [
            {
                "scenario": o.scenario,
                "result": o.result.lower(),
                "seconds": round(o.seconds, 1),
                "steps": [step_record(s) for s in o.steps],
            }
            for o in outcomes
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="scenarios running at once")
    parser.add_argument("--checks", default="", help="a shell command run in a lane once every scenario started")
    parser.add_argument("scenarios", nargs="+", help="started in this order as places free up")
    args = parser.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    console = Console()
    turns = Turns([name for name in args.scenarios if name not in NO_TURN])
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        # Lanes are taken in the order submitted: the checks after the last scenario.
        scenarios = [
            pool.submit(run, name, console=console, turns=turns, nice=LANE_NICE if index else 0)
            for index, name in enumerate(args.scenarios)
        ]
        checks = pool.submit(run_checks, args.checks, console, nice=LANE_NICE) if args.checks else None
        outcomes = [scenario.result() for scenario in scenarios]
        checked = [checks.result()] if checks else []
    wall_seconds = console.elapsed()
    TIMING_FILE.write_text(json.dumps(timing_record(outcomes, wall_seconds), indent=2) + "\n")
    tables = [*summary([*checked, *outcomes]), "", *timing_rows(outcomes, wall_seconds), f"(also in {TIMING_FILE})"]
    console.block("\n".join(tables))
    return 0 if all(outcome.passed for outcome in [*checked, *outcomes]) else 1


if __name__ == "__main__":
    sys.exit(main())
