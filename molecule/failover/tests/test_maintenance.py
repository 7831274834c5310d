"""Broker maintenance under load (docs/maintenance.md): playbooks/rabbitmq-rolling-restart.yml restarts every broker,
one at a time, while tasks are published through the proxies, and loses nothing.

Before each broker is drained, the proxies send it no new connection and the workers connected to it finish their
tasks and reconnect by themselves (the handover), so no task in flight is terminated. Then it is drained:
RabbitMQ closes the other clients' connections itself ("Node was put into maintenance mode") and they reconnect
through HAProxy to a broker that stays up; its stop then has no client left to cut. The brokers' own logs count
all three, and the tasks' completions give the stall each turn costs.

Before any change, the playbook refuses a cluster with an alarm, and a node that holds a queue's last majority.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import failover_results
import pytest
import testinfra.host
from failover_results import MaintenanceNode, RollingRestart
from faults import BROKERS, HEAL_BOUND_S, PUBLISH_BOUND_S, VHOST, WORKERS
from fleetlib.accounting import longest_stall
from fleetlib.brokers import (
    DRAIN_CLOSED,
    DRAIN_STARTED,
    STARTED,
    STOP_CLOSED,
    STOP_STARTED,
    closed_by_workers,
    node_log,
)
from fleetlib.hosts import get, root
from fleetlib.playbook_output import recap
from fleetlib.waits import wait_for
from runs import CONSUMER_PREFETCH, FaultRun, check_task_flow
from stack import await_whole

testinfra_hosts = ["ansible://fo-haproxy"]
pytestmark = pytest.mark.usefixtures("fresh_results")

PLAYBOOK = "playbooks/rabbitmq-rolling-restart.yml"
# One connection per worker program: a pool per queue on each worker host.
WORKER_CONNECTIONS = len(WORKERS) * len(CONSUMER_PREFETCH)
# The goal (issue 25): no broker's turn stalls the fleet's completions longer than this.
TURN_STALL_BOUND_S = 2.0

Runner = Callable[..., subprocess.CompletedProcess[str]]


def turns(host: testinfra.host.Host, since: float, until: float, completed_at: list[float]) -> list[MaintenanceNode]:
    """Each broker's turn, from its own log: its workers handed over, drained, stopped, started, and the client
    connections the drain and the stop closed. A turn begins where the previous broker started (the first, with
    the playbook), since the handover comes before the drain; it ends where the next one begins."""
    logs = {name: node_log(get(host, name), name, since) for name in BROKERS}

    def first(name: str, text: str, after: float = 0.0) -> float | None:
        return min((t for t, line in logs[name] if text in line and t >= after), default=None)

    stopped = {name: first(name, STOP_STARTED) or until for name in BROKERS}
    drained = {name: min(first(name, DRAIN_STARTED) or until, stopped[name]) for name in BROKERS}
    order = sorted(BROKERS, key=drained.__getitem__)
    started = {name: first(name, STARTED, stopped[name]) or until for name in BROKERS}
    began = dict(zip(order, [since, *(started[name] for name in order[:-1])], strict=True))
    found = []
    for name, after in zip(order, [*order[1:], None], strict=True):
        start, stop, end = began[name], stopped[name], began[after] if after else until
        found.append(MaintenanceNode(
            node=name,
            turn_s=round(end - start, 1),
            drain_to_stop_s=round(stop - drained[name], 1),
            stop_to_started_s=round(started[name] - stop, 1),
            longest_stall_s=round(longest_stall(completed_at, start, end), 2),
            connections_handed_over=closed_by_workers(logs[name], start, drained[name]),
            connections_moved=sum(1 for t, line in logs[name] if DRAIN_CLOSED in line and drained[name] <= t < stop),
            connections_cut_by_stop=sum(1 for t, line in logs[name] if STOP_CLOSED in line and stop <= t < end),
        ))  # fmt: skip
    return found


def test_a_rolling_restart_under_load_moves_every_client_before_each_stop(
    host: testinfra.host.Host, playbook_runner_at: Runner
) -> None:
    await_whole(host, "before the restart")
    run = FaultRun(host, "rolling")
    run.start()
    try:
        assert wait_for(lambda: all(run.done(w) for w in WORKERS), timeout=60), "no task done before"
        run.fault_at = time.time()
        result = playbook_runner_at(PLAYBOOK)
        run.healed_at = time.time()
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr
        await_whole(host, "after the restart", HEAL_BOUND_S)
    finally:
        run.stop()
    published = run.publisher.tokens()
    finished = run.finished(published)
    completed_at = [when for _, when in finished]
    record = RollingRestart(
        nodes=turns(host, run.fault_at, run.healed_at, completed_at),
        **run.task_flow(published, finished),
        **run.publishing(),
        **run.long_tasks(),
    )
    failover_results.record("maintenance", "rolling-restart", record)
    assert [turn["node"] for turn in record["nodes"]] == list(BROKERS), record
    for turn in record["nodes"]:
        assert turn["connections_cut_by_stop"] == 0, f"{turn['node']}'s stop cut clients the drain left: {record}"
        assert turn["stop_to_started_s"] > 0, f"{turn['node']} was not restarted: {record}"
        assert turn["longest_stall_s"] <= TURN_STALL_BOUND_S, f"{turn['node']}'s turn stalled the fleet: {record}"
    # Every worker connection sat on some broker when its turn came: its worker moved it, having finished its
    # tasks (the handover). The publisher's, the drain moved.
    assert sum(turn["connections_handed_over"] for turn in record["nodes"]) >= WORKER_CONNECTIONS, record
    assert sum(turn["connections_moved"] for turn in record["nodes"]) >= 1, record
    # A drained broker closes its clients' connections itself, so a publish under way there goes out again at
    # once; no publish may wait longer than one the publisher's own socket ends (a proxy gone under it).
    check_task_flow("rolling-restart", record, TURN_STALL_BOUND_S, "the goal of 2 s per broker", PUBLISH_BOUND_S,
                    planned=True)  # fmt: skip


@pytest.fixture
def queue_with_one_member(host: testinfra.host.Host) -> Iterator[str]:
    """A quorum queue whose only member is on the first broker: its stop would lose the queue's majority."""
    broker, queue = get(host, BROKERS[0]), "maintenance-one-member"
    declare = (f'rabbit_amqqueue:declare(rabbit_misc:r(<<"{VHOST}">>, queue, <<"{queue}">>), true, false, '
               '[{<<"x-queue-type">>, longstr, <<"quorum">>}, {<<"x-quorum-initial-group-size">>, long, 1}], '
               'none, <<"maintenance-test">>).')  # fmt: skip
    root(broker, f"rabbitmqctl eval '{declare}'")
    try:
        yield f"queue '{queue}' in vhost '{VHOST}'"
    finally:
        root(broker, f"rabbitmqctl delete_queue --vhost {VHOST} {queue}")


@pytest.mark.parametrize("unsafe", ["alarm_on_one_broker", "queue_with_one_member"])
def test_an_unsafe_cluster_is_refused_before_any_restart(
    host: testinfra.host.Host, playbook_runner_at: Runner, unsafe: str, request: pytest.FixtureRequest
) -> None:
    named = request.getfixturevalue(unsafe)
    started = {name: root(get(host, name), "systemctl show -P ActiveEnterTimestampMonotonic rabbitmq-server")
               for name in BROKERS}  # fmt: skip
    result = playbook_runner_at(PLAYBOOK)
    assert result.returncode != 0, result.stdout[-3000:]
    assert f"Not restarting {BROKERS[0]}, nothing changed on it" in result.stdout, result.stdout[-3000:]
    assert named in result.stdout, result.stdout[-3000:]
    assert {host: counts["changed"] for host, counts in recap(result.stdout).items()} == dict.fromkeys(BROKERS, 0)
    now = {name: root(get(host, name), "systemctl show -P ActiveEnterTimestampMonotonic rabbitmq-server")
           for name in BROKERS}  # fmt: skip
    assert now == started, "a broker was restarted"
