"""Fixtures shared by the Molecule scenarios' testinfra tests (the helpers are in fleetlib).

The tests run on the control node. They reach the brokers over the Docker
network (the containers' addresses are routable from the host) with py-amqp,
the client Celery itself uses, and drive ansible-playbook for failure paths.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fleetlib import project
from fleetlib.playbooks import run_playbook


@pytest.fixture(scope="session")
def scenario_inventory() -> Path:
    """The inventory Molecule wrote for this scenario (a directory, as users pass one)."""
    return project.scenario_inventory()


@pytest.fixture
def playbook_runner(tmp_path: Path) -> Callable[[Path, dict[str, object]], subprocess.CompletedProcess[str]]:
    """Run a playbook against a throw-away inventory (a dict in YAML inventory form)."""

    def run(playbook: Path, inventory: dict[str, object]) -> subprocess.CompletedProcess[str]:
        inventory_file = tmp_path / "inventory.json"
        inventory_file.write_text(json.dumps(inventory))
        return run_playbook(playbook, inventory_file)

    return run


@pytest.fixture
def playbook_runner_at(scenario_inventory: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a playbook against the scenario's own inventory (the one Molecule wrote)."""
    return lambda playbook, *args: run_playbook(playbook, scenario_inventory, *args)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After the failover scenario's verify, print its results as a table."""
    import failover_results

    ran = [report for reports in terminalreporter.stats.values() for report in reports if hasattr(report, "nodeid")]
    if failover_results.RESULTS.exists() and any("molecule/failover" in report.nodeid for report in ran):
        terminalreporter.section(f"failover results ({failover_results.RESULTS})")
        for row in failover_results.table(json.loads(failover_results.RESULTS.read_text())):
            terminalreporter.write_line(row)
