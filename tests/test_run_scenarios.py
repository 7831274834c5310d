"""The scenario runner: Molecule's steps read from its output, one log per scenario, the timing table."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import run_scenarios
from run_scenarios import Outcome, StepTiming, StepTracker

# A `molecule test -s haproxy` log as Molecule 26 wrote it, colours and all
# (most of the framed Ansible output cut): its verify fails at the 9th test.
# (That scenario's tests are now part of `roles`; the log's format is the same.)
RECORDED = Path(__file__).parent / "data" / "molecule-haproxy-verify-failed.log"


def follow(lines: list[str]) -> tuple[StepTracker, list[str]]:
    """Feed the lines one second apart, then close; the tracker and every event reported."""
    tracker = StepTracker()
    events = [event for second, line in enumerate(lines) for event in tracker.feed(line, float(second))]
    return tracker, events + tracker.close(float(len(lines)))


def test_the_recorded_failure_gives_each_step_in_order_with_its_result() -> None:
    tracker, events = follow(RECORDED.read_text().splitlines(keepends=True))
    assert [(s.step, s.result) for s in tracker.steps] == [
        ("destroy", "successful"),
        ("create", "successful"),
        ("prepare", "successful"),
        ("converge", "successful"),
        ("idempotence", "successful"),
        ("verify", "failed"),
        ("cleanup", "missing playbook"),
        ("destroy", "successful"),
    ]
    assert all(s.seconds > 0 for s in tracker.steps)
    assert events[:2] == ["destroy started", f"destroy finished in {tracker.steps[0].seconds:.0f} s"]
    # The recap at the end repeats the results: they were not counted again.
    assert events[-1] == f"destroy finished in {tracker.steps[-1].seconds:.0f} s"


def test_verify_counts_the_tests_and_names_the_failed_one_whole() -> None:
    tracker, events = follow(RECORDED.read_text().splitlines(keepends=True))
    assert tracker.tests == {"PASSED": 8, "FAILED": 1}
    failed = (
        "tests/test_haproxy.py::test_config_change_reloads_without_dropping_connections[ansible://haproxy-bookworm]"
    )
    assert f"verify: FAILED {failed}" in events
    verify = tracker.steps[5]
    assert f"verify FAILED after {verify.seconds:.0f} s (tests: 8 passed, 1 failed)" in events


def test_an_outcome_wrapped_before_its_progress_is_counted() -> None:
    # Molecule wraps a line too wide for COLUMNS, indenting the rest; the split can fall right after the outcome.
    name = "tests/test_v.py::TestCeleryWorkerValues::test_values_on_the_command_line_work_as_yaml[json]"
    tracker, _ = follow(
        [
            "INFO     [roles > verify] Executing\n",
            f"  \u2502 {name} PASSED{' ' * 40}\n",
            "  \u2502   [100%]\n",
            "INFO     [roles > verify] Executed: Successful\n",
        ]
    )
    assert tracker.steps[0].tests == (run_scenarios.CaseTiming(name, 2.0, "passed"),)


def test_markers_without_colours_are_read_too() -> None:
    # NO_COLOR, or no terminal and no TERM: Molecule's plain form.
    tracker, events = follow(
        [
            "INFO     [testhosts > converge] Executing\n",
            "  │ TASK [Gathering Facts]\n",
            "INFO     [testhosts > converge] Executed: Successful\n",
            "INFO     [testhosts > side_effect] Executing\n",
            "INFO     [testhosts > side_effect] Executed: Skipped\n",
        ]
    )
    assert tracker.steps == [StepTiming("converge", 2.0, "successful"), StepTiming("side_effect", 1.0, "skipped")]
    assert events == [
        "converge started",
        "converge finished in 2 s",
        "side_effect started",
        "side_effect ended (skipped) after 1 s",
    ]


def test_a_step_molecule_never_ends_is_unfinished() -> None:
    # A failing dependency command makes Molecule exit without an end marker.
    tracker, events = follow(["INFO     failover ➜ dependency: Executing\n", "ERROR    Command failed\n"])
    assert tracker.steps == [StepTiming("dependency", 2.0, "unfinished")]
    assert events[-1] == "dependency ended (unfinished) after 2 s"


def test_other_lines_naming_a_step_are_not_markers() -> None:
    tracker = StepTracker()
    lines = [
        "INFO     roles ➜ verify: Executing\n",
        "INFO     roles ➜ verify: Executing Testinfra tests found in molecule/roles/tests/...\n",
        "roles ➜ verify: Executed: Successful\n",
        "  │ ok: [haproxy-trixie] => Executing\n",
    ]
    events = [event for line in lines for event in tracker.feed(line, 1.0)]
    assert events == ["verify started"]
    assert tracker.current == "verify"
    assert tracker.steps == []


@pytest.fixture
def molecule_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `molecule` on PATH that runs one step, called as run_scenarios calls it; converge fails for "broken"."""
    script = tmp_path / "bin" / "molecule"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        "# molecule --base-config A --base-config B <step> --scenario-name <scenario>\n"
        "step=$5 scenario=$7\n"
        'echo "molecule $*"\n'
        'echo "INFO     $scenario ➜ $step: Executing"\n'
        '[ "$scenario/$step" = broken/converge ] && echo "ERROR    $scenario ➜ $step: Executed: Failed" && exit 2\n'
        'echo "INFO     $scenario ➜ $step: Executed: Successful"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


SEQUENCE = ["destroy", "create", "converge", "verify", "destroy"]


@pytest.mark.usefixtures("molecule_stand_in")
def test_a_passing_scenarios_log_is_named_not_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_scenarios.run("good", run_scenarios.Console(), log_dir=tmp_path, sequence=SEQUENCE)
    out = capsys.readouterr().out
    assert outcome.passed
    assert [s.step for s in outcome.steps] == SEQUENCE
    log = (tmp_path / "good.log").read_text()
    assert log.startswith("molecule --base-config ")
    assert log.splitlines()[0].endswith("/.config/molecule/one-step.yml destroy --scenario-name good")
    assert "molecule --base-config" not in out
    assert "good          converge started" in out
    assert f"good          passed in 0 s, log: {tmp_path / 'good.log'}" in out


@pytest.mark.usefixtures("molecule_stand_in")
def test_a_failing_scenarios_log_is_printed_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_scenarios.run("broken", run_scenarios.Console(), log_dir=tmp_path, sequence=SEQUENCE)
    out = capsys.readouterr().out
    assert outcome.returncode == 2
    # After the failed step only the destroy steps run, as in `molecule test`.
    assert [(s.step, s.result) for s in outcome.steps] == [
        ("destroy", "successful"),
        ("create", "successful"),
        ("converge", "failed"),
        ("destroy", "successful"),
    ]
    assert "broken        converge FAILED after 0 s" in out
    assert f"===== broken: FAILED in 0 s, log: {tmp_path / 'broken.log'} =====" in out
    assert " converge --scenario-name broken\n" in out


def test_every_scenario_names_its_steps() -> None:
    for scenario in ("failover", "roles", "testhosts"):
        steps = run_scenarios.test_sequence(scenario)
        assert {"create", "converge", "verify", "destroy"} <= set(steps), (scenario, steps)
        assert steps[-1] == "destroy", (scenario, steps)


def test_converges_take_turns_in_the_listed_order() -> None:
    turns = run_scenarios.Turns(["first", "second", "third"])
    taken: list[str] = []
    first_may_go = threading.Event()

    def converge(scenario: str) -> None:
        if scenario == "first":
            first_may_go.wait(5)
        with turns.turn(scenario):
            taken.append(scenario)

    with ThreadPoolExecutor(3) as pool:
        # The last listed asks first, the second next; neither goes before "first".
        futures = [pool.submit(converge, name) for name in ("third", "second", "first")]
        assert turns.waiting_on("second") == "first"
        first_may_go.set()
        for future in futures:
            future.result(timeout=5)
    assert taken == ["first", "second", "third"]


def test_a_scenario_that_ends_without_a_turn_lets_the_next_go() -> None:
    turns = run_scenarios.Turns(["failed-early", "next"])
    turns.done("failed-early")
    with turns.turn("next"):
        assert turns.waiting_on("next") == "next"
    assert turns.waiting_on("next") == ""


def test_a_light_converge_takes_no_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """testhosts converges while the first scenario holds its turn."""
    monkeypatch.setattr(run_scenarios, "run_step", lambda *args: 0)
    turns = run_scenarios.Turns(["failover", "roles"])
    with turns.turn("failover"), ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_scenarios.run, "testhosts", run_scenarios.Console(), log_dir=tmp_path, turns=turns,
                              sequence=["create", "converge", "verify"])  # fmt: skip
        # It would wait for failover's turn for ever if it asked for one.
        assert running.result(timeout=5).passed
    assert "testhosts" in run_scenarios.NO_TURN


def test_the_checks_are_logged_and_a_failure_printed_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    passed = run_scenarios.run_checks("echo linted", run_scenarios.Console(), log_dir=tmp_path)
    assert passed.passed
    assert passed.scenario == "checks"
    assert (tmp_path / "checks.log").read_text() == "linted\n"
    assert "checks        passed in 0 s" in capsys.readouterr().out
    failed = run_scenarios.run_checks("echo 1 failed; exit 2", run_scenarios.Console(), log_dir=tmp_path)
    assert failed.returncode == 2
    out = capsys.readouterr().out
    assert f"===== checks: FAILED in 0 s, log: {tmp_path / 'checks.log'} =====\n1 failed\n" in out


def outcomes(tmp_path: Path) -> list[Outcome]:
    failover = (StepTiming("create", 20.4, "successful"), StepTiming("converge", 241.2, "successful"))
    roles = (StepTiming("verify", 31.0, "failed"), StepTiming("destroy", 4.0, "successful"))
    return [
        Outcome("failover", 0, 612.4, tmp_path / "failover.log", failover),
        Outcome("roles", 1, 301.0, tmp_path / "roles.log", roles),
    ]


def test_summary_lists_every_scenario_in_order(tmp_path: Path) -> None:
    rows = run_scenarios.summary(outcomes(tmp_path))
    assert rows[1].split() == ["failover", "passed", "612"]
    assert rows[2].split() == ["roles", "FAILED", "301"]


def test_the_timing_table_has_each_step_a_total_per_scenario_and_the_wall_time(tmp_path: Path) -> None:
    rows = [row.split() for row in run_scenarios.timing_rows(outcomes(tmp_path), 640.3)]
    assert rows == [
        ["scenario", "step", "seconds"],
        ["failover", "create", "20"],
        ["failover", "converge", "241"],
        ["failover", "total", "612"],
        ["roles", "verify", "31", "failed"],
        ["roles", "destroy", "4"],
        ["roles", "total", "301"],
        ["wall", "time", "640"],
    ]


def test_the_timing_record_is_json(tmp_path: Path) -> None:
    record = json.loads(json.dumps(run_scenarios.timing_record(outcomes(tmp_path), 640.34)))
    assert record["wall_seconds"] == 640.3
    assert record["scenarios"][1] == {
        "scenario": "roles",
        "result": "failed",
        "seconds": 301.0,
        "steps": [
            {"step": "verify", "seconds": 31.0, "result": "failed"},
            {"step": "destroy", "seconds": 4.0, "result": "successful"},
        ],
    }


def test_verify_times_each_test_from_the_previous_ones_end() -> None:
    tracker, _ = follow(RECORDED.read_text().splitlines(keepends=True))
    verify = tracker.steps[5]
    assert len(verify.tests) == 9
    assert [t.outcome for t in verify.tests] == ["passed"] * 8 + ["failed"]
    assert verify.tests[-1].test.endswith(
        "test_config_change_reloads_without_dropping_connections[ansible://haproxy-bookworm]"
    )
    # The tests' seconds add up to verify's, up to the lines after the last test.
    assert 0 < sum(t.seconds for t in verify.tests) <= verify.seconds
    assert all(not s.tests for s in tracker.steps if s.step != "verify")


def test_the_timing_table_gives_verify_seconds_per_module() -> None:
    tests = (
        run_scenarios.CaseTiming("tests/test_a.py::test_one", 10.0, "passed"),
        run_scenarios.CaseTiming("tests/test_b.py::test_two", 5.0, "passed"),
        run_scenarios.CaseTiming("tests/test_a.py::test_three", 2.0, "passed"),
    )
    outcome = Outcome("failover", 0, 20.0, Path("x.log"), (StepTiming("verify", 18.0, "successful", tests),))
    rows = run_scenarios.timing_rows([outcome], 20.0)
    assert any(row.split() == ["12", "tests/test_a.py"] for row in rows), rows
    assert any(row.split() == ["5", "tests/test_b.py"] for row in rows), rows
    record = run_scenarios.timing_record([outcome], 20.0)
    assert record["scenarios"][0]["steps"][0]["tests"][1] == {
        "test": "tests/test_b.py::test_two",
        "seconds": 5.0,
        "outcome": "passed",
    }


def listing(molecule_rows: str, containers: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """subprocess.run as `molecule list --format plain`, then `docker ps`, would answer."""

    def run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        out = molecule_rows if command[0] == "molecule" else containers
        return subprocess.CompletedProcess(command, 0, out, "")

    return run


@pytest.mark.parametrize(
    ("rows", "containers", "skipped"),
    [
        ("fo-a docker ansible failover false false\nfo-b docker ansible failover false false\n", "other\n", True),
        ("fo-a docker ansible failover true false\nfo-b docker ansible failover false false\n", "", False),
        ("fo-a docker ansible failover false false\n", "fo-a\n", False),
        ("", "", False),
    ],
    ids=["nothing", "molecule-holds-one", "a-container-is-left", "no-listing"],
)
def test_the_first_destroy_is_skipped_only_when_nothing_exists(
    monkeypatch: pytest.MonkeyPatch, rows: str, containers: str, skipped: bool
) -> None:
    monkeypatch.setattr(run_scenarios.subprocess, "run", listing(rows, containers))
    assert run_scenarios.nothing_to_destroy("failover") is skipped


def test_a_lane_after_the_first_runs_its_commands_niced() -> None:
    command = ["molecule", "verify", "--scenario-name", "roles"]
    assert run_scenarios.niced(command, 0) == command
    assert run_scenarios.niced(command, run_scenarios.LANE_NICE) == ["nice", "-n", "10", *command]


def test_a_lanes_containers_get_the_lower_cpu_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []

    def fake_run(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(run_scenarios.subprocess, "run", fake_run)
    log = io.StringIO()
    run_scenarios.lower_cpu_weight("roles", log)
    assert ran == [["docker", "update", "--cpu-shares", "128", *run_scenarios.platform_names("roles")]]
    assert {"rmq-trixie-1", "worker-bookworm"} <= set(ran[0])
    assert log.getvalue().startswith("docker update --cpu-shares 128 rmq-trixie-1 ")
