"""The README quotes the committed reference run of the failover scenario, exactly."""

from __future__ import annotations

import json

import failover_results


def test_readme_quotes_the_reference_run() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    readme = failover_results.README.read_text()
    assert failover_results.readme_block(reference) in readme, (
        "README.md's failover table differs from molecule/failover/results/reference.json: "
        "run `python tools/failover_results.py --adopt` after a failover run, or fix the README by hand"
    )


def test_every_case_of_the_scenario_is_in_the_reference() -> None:
    reference = json.loads(failover_results.REFERENCE.read_text())
    assert {"control", "anchor", "idle_publisher"} <= set(reference["runs"])
    for name, case in reference["cases"].items():
        assert case["tasks_lost"] == 0, name


def test_runs_write_to_an_ignored_path() -> None:
    ignored = (failover_results.PROJECT_DIR / ".gitignore").read_text().split()
    assert failover_results.RESULTS.relative_to(failover_results.PROJECT_DIR).parts[0] + "/" in ignored
