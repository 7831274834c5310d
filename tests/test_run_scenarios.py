"""The scenario runner: one log per scenario, the exit status of the worst."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import run_scenarios


@pytest.fixture
def molecule_stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `molecule` on PATH that prints its arguments and fails for the scenario named "broken"."""
    script = tmp_path / "bin" / "molecule"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\necho "molecule $*"\n[ "$3" != broken ]\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.usefixtures("molecule_stand_in")
def test_each_scenario_gets_its_own_log_and_outcome(tmp_path: Path) -> None:
    passed = run_scenarios.run("good", log_dir=tmp_path)
    failed = run_scenarios.run("broken", log_dir=tmp_path)
    assert passed.passed
    assert not failed.passed
    assert (tmp_path / "good.log").read_text() == "molecule test --scenario-name good\n"
    assert (tmp_path / "broken.log").read_text() == "molecule test --scenario-name broken\n"


def test_summary_lists_every_scenario_in_order(tmp_path: Path) -> None:
    outcomes = [
        run_scenarios.Outcome("failover", 0, 612.4, tmp_path / "failover.log"),
        run_scenarios.Outcome("haproxy", 1, 301.0, tmp_path / "haproxy.log"),
    ]
    rows = run_scenarios.summary(outcomes)
    assert rows[1].split() == ["failover", "passed", "612"]
    assert rows[2].split() == ["haproxy", "FAILED", "301"]
