"""The docs quote the committed reference run of the failover scenario, exactly."""

from __future__ import annotations

import json

import failover_results

ADOPT = "run `python tools/failover_results.py --adopt` after a failover run"


def test_the_measurements_quote_the_reference_run() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert failover_results.measurements_block(reference) in failover_results.DOC.read_text(), (
        f"docs/measurements.md's failover table differs from molecule/failover/results/reference.json: {ADOPT}"
    )


def test_the_readme_headline_quotes_the_reference_run() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert failover_results.headline_block(reference) in failover_results.README.read_text(), (
        f"README.md's failover headline differs from molecule/failover/results/reference.json: {ADOPT}"
    )


def test_the_network_splits_page_quotes_the_reference_run() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert failover_results.partition_block(reference) in failover_results.SPLITS.read_text(), (
        f"docs/network-splits.md's partition timeline differs from molecule/failover/results/reference.json: {ADOPT}"
    )


def test_every_case_of_the_scenario_is_in_the_reference() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert {"control", "anchor", "idle_publisher"} <= set(reference["runs"])
    for name, case in reference["cases"].items():
        assert case["tasks_lost"] == 0, name


def test_runs_write_to_an_ignored_path() -> None:
    ignored = (failover_results.PROJECT_DIR / ".gitignore").read_text().split()
    assert failover_results.RESULTS.relative_to(failover_results.PROJECT_DIR).parts[0] + "/" in ignored
