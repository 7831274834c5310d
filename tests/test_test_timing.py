"""The docs' copies of the measured `make test` runs, and the budget they are held to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_timing


def reference() -> dict[str, list[dict[str, object]]]:
    return json.loads(test_timing.REFERENCE.read_text())


def test_the_quoted_runs_passed_within_cis_cap() -> None:
    # Whether each is within the project's 30-minute budget is shown in the table, not assumed.
    runs = reference()["runs"]
    assert 1 <= len(runs) <= test_timing.QUOTED
    for run in runs:
        assert run["result"] == "passed", run["commit"]
        assert run["make_test_s"] <= test_timing.CI_CAP_S, f"{run['commit']}: {run['make_test_s']} s"


MOLECULE = {
    "wall_seconds": 30.0,
    "scenarios": [
        {
            "scenario": "haproxy",
            "result": "passed",
            "seconds": 30.0,
            "steps": [
                {"step": "destroy", "seconds": 2.0, "result": "successful"},
                {
                    "step": "verify",
                    "seconds": 20.0,
                    "result": "successful",
                    "tests": [
                        {"test": "tests/test_a.py::one", "seconds": 5.0, "outcome": "passed"},
                        {"test": "tests/test_a.py::two", "seconds": 6.0, "outcome": "passed"},
                    ],
                },
                {"step": "destroy", "seconds": 3.0, "result": "successful"},
            ],
        }
    ],
}


def test_every_step_and_test_module_has_a_row() -> None:
    rows = test_timing.step_rows([{"molecule": MOLECULE}])
    assert "| haproxy | destroy | 2 |" in rows
    assert "| haproxy | &nbsp;&nbsp;test_a.py | 11 |" in rows
    assert "| haproxy | destroy (end) | 3 |" in rows
    assert "| haproxy | **total** | 30 |" in rows


def test_the_readme_table_has_a_row_per_scenario_and_sums_both_destroys() -> None:
    rows = test_timing.summary_rows([{"molecule": MOLECULE}, {"molecule": MOLECULE}])
    assert rows[0] == "| scenario | verify | destroy | total |"
    assert rows[2:] == ["| haproxy | 20 / 20 | 5 / 5 | 30 / 30 |"]


def test_a_failed_run_is_not_adopted(tmp_path: Path) -> None:
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "make-test.json").write_text(
        '{"make_test_s": 1, "commit": "x", "date": "d", "result": "failed"}'
    )
    (tmp_path / ".cache" / "molecule-timing.json").write_text('{"wall_seconds": 1, "scenarios": []}')
    with pytest.raises(SystemExit, match="did not pass"):
        test_timing.run_from(tmp_path)


def test_a_run_shows_the_machines_speed_and_load_when_recorded() -> None:
    machine = {"benchmark_s": [0.32, 0.41], "busy_pct": 92.4, "steal_pct": 0.0}
    assert test_timing.machine_cell(machine) == "benchmark 0.32 / 0.41 s, CPU 92% busy, 0% stolen"
    assert test_timing.machine_cell(None) == "-"
