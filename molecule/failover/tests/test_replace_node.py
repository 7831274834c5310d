"""Replacing a broker under load (docs/maintenance.md, "Replacing a broker"): playbooks/rabbitmq-replace-node.yml
swaps a broker for fo-rabbitmq-4, a fresh host, while tasks are published through the proxies, and loses
nothing: the new node joins and every quorum queue gets a member there; the old node's workers finish their tasks
and move (the handover), the drain moves its other clients, its members go, and it is forgotten.

Before any change, the playbook refuses an inventory that would leave an even-sized cluster, and a cluster with
an alarm.

The replacement is the last change to the stack (conftest.py orders it after every other test but the installed
tarball's, which then runs site.yml and monitoring.yml on the replaced inventory and must find nothing to change).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import failover_results
import pytest
import testinfra.host
from failover_results import Replacement, ReplacementStep
from faults import BROKERS, HEAL_BOUND_S, PUBLISH_BOUND_S, WORKERS
from fleetlib.accounting import longest_stall
from fleetlib.brokers import DRAIN_CLOSED, DRAIN_STARTED, STOP_CLOSED, STOP_STARTED, closed_by_workers, node_log
from fleetlib.hosts import get
from fleetlib.playbook_output import failures, recap
from fleetlib.playbooks import run_playbook
from fleetlib.waits import wait_for
from replacement import SPARE, edited_inventory, replaced, worker_connections
from runs import FaultRun, check_task_flow
from stack import await_whole
from test_maintenance import TURN_STALL_BOUND_S

testinfra_hosts = ["ansible://fo-haproxy"]
pytestmark = pytest.mark.usefixtures("fresh_results")

PLAYBOOK = "playbooks/rabbitmq-replace-node.yml"
# The refusals name this one: the last broker.
OLD = BROKERS[2]
# The playbook's last word: what it replaced, by what, and when each step began (epoch seconds).
SUMMARY = re.compile(r'\{"replaced": [^}]*\}')


def replace(inventory: Path, old: str = OLD) -> subprocess.CompletedProcess[str]:
    return run_playbook(PLAYBOOK, inventory, "-e", f"rabbitmq_replace_old={old}")


def spare_has_rabbitmq(host: testinfra.host.Host) -> bool:
    return get(host, SPARE).package("rabbitmq-server").is_installed


@pytest.fixture
def even_sized_target() -> str:
    """The inventory an operator gets wrong: the new host added to the group, the old one left in."""
    return "would leave an even-sized cluster of 4 node(s)"


@pytest.mark.parametrize("unsafe", ["even_sized_target", "alarm_on_one_broker"])
def test_an_unsafe_replacement_is_refused_before_any_change(
    host: testinfra.host.Host, scenario_inventory: Path, unsafe: str, request: pytest.FixtureRequest
) -> None:
    named = request.getfixturevalue(unsafe)
    group = (*BROKERS, SPARE) if unsafe == "even_sized_target" else replaced(OLD)
    result = replace(edited_inventory(scenario_inventory, unsafe, group))
    assert result.returncode != 0, result.stdout[-3000:]
    output = " ".join(result.stdout.split())
    assert f"Not replacing {OLD} with {SPARE}, nothing changed" in output, result.stdout[-3000:]
    assert named in output, result.stdout[-3000:]
    assert {name: counts["changed"] for name, counts in recap(result.stdout).items() if counts["changed"]} == {}
    assert not spare_has_rabbitmq(host), f"{SPARE} got RabbitMQ"


def steps(summary: dict[str, float], completed_at: list[float]) -> list[ReplacementStep]:
    """The new node's step (its join and its members' catch-up) and the old node's (handover to forgotten)."""
    bounds = [("new node joined, its members caught up", summary["began"], summary["synced"]),
              ("old node handed over, drained and forgotten", summary["synced"], summary["removed"])]  # fmt: skip
    return [
        ReplacementStep(
            step=step, took_s=round(end - start, 1), longest_stall_s=round(longest_stall(completed_at, start, end), 2)
        )
        for step, start, end in bounds
    ]


def test_a_broker_replaced_under_load_loses_nothing(host: testinfra.host.Host, scenario_inventory: Path) -> None:
    await_whole(host, "before the replacement")
    assert not spare_has_rabbitmq(host), f"{SPARE} is not a fresh host"
    # The broker replaced is the one that holds the most worker connections (not the first, which seeds the
    # join), so that the handover is measured.
    held = worker_connections(host, WORKERS)
    old = max(BROKERS[1:], key=lambda broker: held[broker])
    assert held[old] >= 1, f"no worker is connected to {BROKERS[1:]}: {held}"
    inventory = edited_inventory(scenario_inventory, "replaced", replaced(old))
    run = FaultRun(host, "replace")
    run.queue_reader = BROKERS[0]
    run.start()
    try:
        assert wait_for(lambda: all(run.done(w) for w in WORKERS), timeout=60), "no task done before"
        run.fault_at = time.time()
        result = replace(inventory, old)
        run.healed_at = time.time()
        assert result.returncode == 0, failures(result.stdout) + result.stderr
        await_whole(host, "after the replacement", HEAL_BOUND_S, brokers=replaced(old))
    finally:
        run.stop()
    found = SUMMARY.search(result.stdout.replace("\\", ""))
    assert found, result.stdout[-3000:]
    summary = json.loads(found.group(0))
    published = run.publisher.tokens()
    finished = run.finished(published)
    completed_at = [when for _, when in finished]
    log = node_log(get(host, old), old, run.fault_at)
    drained = min((t for t, line in log if DRAIN_STARTED in line), default=run.healed_at)
    stopped = min((t for t, line in log if STOP_STARTED in line), default=run.healed_at)
    record = Replacement(
        replaced=summary["replaced"],
        by=summary["by"],
        steps=steps(summary, completed_at),
        connections_handed_over=closed_by_workers(log, run.fault_at, drained),
        connections_moved=sum(1 for t, line in log if DRAIN_CLOSED in line and drained <= t < stopped),
        connections_cut_by_stop=sum(1 for t, line in log if STOP_CLOSED in line and t >= stopped),
        **run.task_flow(published, finished),
        **run.publishing(),
        **run.long_tasks(),
    )
    failover_results.record("maintenance", "replace-node", record)
    assert (record["replaced"], record["by"]) == (old, SPARE), record
    assert record["connections_cut_by_stop"] == 0, f"the old node's stop cut clients the drain left: {record}"
    for step in record["steps"]:
        assert step["longest_stall_s"] <= TURN_STALL_BOUND_S, f"{step['step']} stalled the fleet: {record}"
    # Each worker connection the old node held was handed over by its worker, having finished its tasks.
    assert record["connections_handed_over"] >= held[old], record
    check_task_flow("replace-node", record, TURN_STALL_BOUND_S, "the goal of 2 s per broker", PUBLISH_BOUND_S,
                    planned=True)  # fmt: skip
