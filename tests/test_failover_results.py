"""The docs quote the committed reference run of the failover scenario, exactly."""

from __future__ import annotations

import json

import failover_results


def test_the_docs_quote_the_reference_run() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    stale = [
        path.relative_to(failover_results.PROJECT_DIR).as_posix()
        for path, _, _, block in failover_results.generated(reference)
        if block not in path.read_text()
    ]
    assert stale == [], (
        f"{stale} differ from molecule/failover/results/reference.json: "
        "run `python tools/failover_results.py --adopt` after a failover run"
    )


def test_every_case_of_the_scenario_is_in_the_reference() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert {"control", "anchor", "idle_publisher"} <= set(reference["runs"])
    for name, case in reference["cases"].items():
        assert case["tasks_lost"] == 0, name


def test_runs_write_to_an_ignored_path() -> None:
    ignored = (failover_results.PROJECT_DIR / ".gitignore").read_text().split()
    assert failover_results.RESULTS.relative_to(failover_results.PROJECT_DIR).parts[0] + "/" in ignored
