"""The docs quote the committed reference run of the failover scenario, exactly."""

from __future__ import annotations

import json
from pathlib import Path

import failover_results
import pytest


def test_every_case_of_the_scenario_is_in_the_reference() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert {"control", "anchor", "idle_publisher"} <= set(reference["runs"])
    for name, case in reference["cases"].items():
        assert case["tasks_lost"] == 0, name


def test_the_reference_holds_exactly_the_records_the_tests_write() -> None:
    """Every typed section of the reference has the keys of its record type, no more, no fewer."""
    reference = json.loads(failover_results.REFERENCE.read_text())
    errors = {
        f"{section}/{name}": failover_results.key_errors(kind, result)
        for section in failover_results.RECORDS
        for name, result in reference.get(section, {}).items()
        if (kind := failover_results.record_type(section, name)) is not None
    }
    assert {where: wrong for where, wrong in errors.items() if wrong} == {}
    assert set(errors) >= {"runs/control", "runs/anchor", "runs/idle_publisher"}


def test_a_result_that_is_not_its_record_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(failover_results, "RESULTS", tmp_path / "results.json")
    idle = {"idle_s": 40.0, "proxy_timeout_s": 30.0, "publish_latency_s": 0.1, "error": "", "completed": True}
    failover_results.record("runs", "idle_publisher", failover_results.IdlePublisherRun(**idle))
    with pytest.raises(ValueError, match="missing completed, unknown done"):
        failover_results.record("runs", "idle_publisher", {**{k: v for k, v in idle.items() if k != "completed"},
                                                           "done": True})  # fmt: skip
    assert json.loads(failover_results.RESULTS.read_text())["runs"] == {"idle_publisher": idle}


def test_runs_write_to_an_ignored_path() -> None:
    ignored = (failover_results.PROJECT_DIR / ".gitignore").read_text().split()
    assert failover_results.RESULTS.relative_to(failover_results.PROJECT_DIR).parts[0] + "/" in ignored
