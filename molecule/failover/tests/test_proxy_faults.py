"""Proxy failure: every fault of the proxy that holds the virtual address costs the fleet a few seconds and no task.

Two proxies share a virtual address (keepalived); the workers and the
publisher connect to it alone. Each fault hits the proxy holding it (or one
worker's path to it) while tasks are published every 0.1 s. When the address
moves, the workers' next segment meets the new holder's kernel, which answers
with a RST: the network notices, not the heartbeat. Each case also measures
the longest stall once the fault healed: the address stays where it moved.
Results go to the same results file as the broker faults (section
"proxy_cases").
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable

import failover_results
import pytest
import testinfra.host
from failover_results import ProxyCase
from faults import (
    ADDRESS_RECONNECT_S,
    HOLDER,
    PEER,
    PROXIES,
    PROXY_FAULTS,
    PUBLISH_BOUND_S,
    STALL_GOAL_S,
    VIRTUAL_ADDRESS,
    WORKER_LOG,
    WORKERS,
    ProxyFault,
)
from fleetlib.accounting import longest_stall
from fleetlib.hosts import get, log_records, log_times, root
from fleetlib.proxies import address_holders, connections_to, sessions_from
from fleetlib.waits import wait_for
from runs import FaultRun, check_task_flow
from stack import await_whole, problems_after, proxies

testinfra_hosts = ["ansible://fo-haproxy"]
# Results go to the file test_failover.py writes too, emptied once per run whichever module comes first.
pytestmark = pytest.mark.usefixtures("fresh_results")

LOST = "Connection to broker lost"
CONNECTED = "Connected to amqps://"
# How long tasks flow under a fault no worker may notice (a reload), and under the others once all moved.
QUIET_HOLD_S = 10.0
HOLD_AFTER_MOVE_S = 3.0
# How long tasks flow once the fault healed, to see whether the address moves again.
AFTER_HEAL_S = 5.0
# Celery's reconnect loop backs off (2, 4, 6 ... s, at most 30 s) while a worker cannot reach the address.
RETRY_BACKOFF_MAX_S = 30.0

Runner = Callable[..., subprocess.CompletedProcess[str]]


class ProxyRun(FaultRun):
    """One proxy fault: the workers, the publisher, where the address is, and when things happened."""

    def __init__(self, host: testinfra.host.Host, name: str, runner: Runner) -> None:
        super().__init__(host, name)
        self.name, self.fault, self.runner = name, PROXY_FAULTS[name], runner
        [self.holder] = address_holders(proxies(host), VIRTUAL_ADDRESS)
        self.peer = next(name for name in PROXIES if name != self.holder)
        self.on = {HOLDER: self.holder}.get(self.fault.on, self.fault.on)
        self.stopped_at = 0.0

    def apply(self, arguments: str) -> None:
        fault: ProxyFault = self.fault
        if fault.playbook:
            result = self.runner(fault.playbook, "--limit", self.on, *shlex.split(arguments))
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        else:
            root(get(self.haproxy, self.on), arguments)

    def lost_at(self, worker: str) -> float:
        times = [t for t in log_times(self.workers[worker], WORKER_LOG, LOST) if t >= self.fault_at]
        return min(times, default=float("inf"))

    def reconnected_at(self, worker: str) -> float:
        """When the worker connected again after losing its connection."""
        lost = self.lost_at(worker)
        return min((when for when, _ in log_records(self.workers[worker], WORKER_LOG, CONNECTED) if when >= lost),
                   default=float("inf"))  # fmt: skip

    def consuming_again(self, worker: str) -> float:
        since = self.reconnected_at(worker)
        return min((when for _, when in self.done(worker) if when > since), default=float("inf"))

    def serving(self) -> dict[str, str]:
        """The proxy each worker's connection goes through now ("" when it has none)."""
        sessions = {name: sessions_from(get(self.haproxy, name), VIRTUAL_ADDRESS, 5671) for name in PROXIES}
        ends = {worker: connections_to(host, VIRTUAL_ADDRESS, 5671) for worker, host in self.workers.items()}
        return {worker: next((name for name, peers in sessions.items() if ends[worker] & peers), "")
                for worker in WORKERS}  # fmt: skip

    def moved(self) -> bool:
        return all(self.consuming_again(worker) < float("inf") for worker in self.fault.hits)

    def stall_after_heal(self, finished: list[tuple[str, float]]) -> float:
        return round(longest_stall([when for _, when in finished], self.healed_at, self.stopped_at), 2)


def on_the_holder(run: ProxyRun) -> bool:
    """Whether every worker's connection goes through the proxy holding the address (one still on the other meets
    a RST with its next segment: an idle one sends a keepalive probe every second)."""
    return set(run.serving().values()) == {run.holder}


@pytest.mark.parametrize("name", PROXY_FAULTS)
def test_workers_survive_a_proxy_fault(host: testinfra.host.Host, name: str, playbook_runner_at: Runner) -> None:
    await_whole(host, "before the fault")
    run = ProxyRun(host, name, playbook_runner_at)
    assert wait_for(lambda: on_the_holder(run), timeout=30), f"{name}: workers not on {run.holder}: {run.serving()}"
    run.start()
    assert wait_for(lambda: all(run.done(w) for w in WORKERS), timeout=60), "no task done before the fault"
    run.fault_at = time.time()
    try:
        run.apply(run.fault.inject)
        if not run.fault.hits:
            wait_for(lambda: time.time() >= run.fault_at + QUIET_HOLD_S, timeout=QUIET_HOLD_S + 5)
        elif run.fault.reconnects_under_fault:
            bound = (run.fault.detection_bound_s or 60.0) + run.fault.stall_bound_s
            wait_for(run.moved, timeout=bound + 30, interval=1)
            wait_for(lambda: False, timeout=HOLD_AFTER_MOVE_S)
        else:
            noticed = lambda: all(run.lost_at(w) < float("inf") for w in run.fault.hits)  # noqa: E731
            wait_for(noticed, timeout=(run.fault.detection_bound_s or 60.0) + 30, interval=1)
        if run.fault.holder_gives_up:
            gone = lambda: address_holders([get(host, run.holder)], VIRTUAL_ADDRESS) == []  # noqa: E731
            assert wait_for(gone, timeout=30), f"{name}: {run.holder} still holds the address 30 s into the fault"
        moved_to = address_holders(proxies(host), VIRTUAL_ADDRESS)
        through = run.serving()
    finally:
        run.apply(run.fault.heal)
        run.healed_at = time.time()
    if not run.fault.reconnects_under_fault:
        bound = RETRY_BACKOFF_MAX_S + ADDRESS_RECONNECT_S
        back = wait_for(run.moved, timeout=bound + 30, interval=1)
        assert back, f"{name}: {run.fault.hits} not consuming again {bound + 30} s after the heal"
    missing = problems_after(host, 90, interval=1)
    # Tasks flow at least AFTER_HEAL_S past the heal (the stall after it is measured over that).
    wait_for(lambda: time.time() >= run.healed_at + AFTER_HEAL_S, timeout=AFTER_HEAL_S + 5)
    run.stopped_at = time.time()
    run.stop()
    result = account(run, moved_to, through)
    failover_results.record("proxy_cases", name, result)
    assert not missing, f"{name}: the stack was not whole 90 s after the heal: {missing}; {result}"
    check(run, result)


def account(run: ProxyRun, moved_to: list[str], through: dict[str, str]) -> ProxyCase:
    published = run.publisher.tokens()
    done = run.finished(published)
    since = run.since
    return ProxyCase(
        fault=run.name,
        on=run.on,
        address_held_by=moved_to,
        time_to_detection_s={worker: since(run.lost_at(worker)) for worker in WORKERS},
        time_to_consuming_s={worker: since(run.consuming_again(worker)) for worker in WORKERS},
        time_to_reconnect_s={worker: since(run.reconnected_at(worker)) for worker in WORKERS},
        reconnected_through=through,
        detection_bound_s=run.fault.detection_bound_s,
        stall_bound_s=run.fault.stall_bound_s,
        stall_after_heal_s=run.stall_after_heal(done),
        after_heal_bound_s=run.fault.after_heal_bound_s,
        **run.task_flow(published, done),
        **run.publishing(),
        **run.long_tasks(),
    )


def check(run: ProxyRun, result: ProxyCase) -> None:
    fault, name = run.fault, run.name
    expected = {PEER: run.peer, "": run.holder}[fault.moves_to]
    assert expected in result["address_held_by"], f"{name}: the address was on {result['address_held_by']}: {result}"
    for worker in WORKERS:
        detected, consuming = result["time_to_detection_s"][worker], result["time_to_consuming_s"][worker]
        if worker not in fault.hits:
            assert detected == float("inf"), f"{name}: {worker} lost its connection: {result}"
            continue
        if fault.detection_bound_s is not None:
            late = f"{name}: {worker} noticed after {detected} s (bound {fault.detection_bound_s}): {result}"
            assert detected <= fault.detection_bound_s, late
        if not fault.reconnects_under_fault:
            continue
        reconnect = result["time_to_reconnect_s"][worker] - detected
        slow = f"{name}: {worker} reconnected {reconnect:.2f} s after noticing (bound {fault.reconnect_bound_s})"
        assert reconnect <= fault.reconnect_bound_s, f"{slow}: {result}"
        served = result["reconnected_through"][worker]
        assert served == expected, f"{name}: {worker} went through {served!r}, not {expected}: {result}"
        idle = f"{name}: {worker} consumed {consuming - detected:.2f} s after noticing (bound {fault.stall_bound_s})"
        assert consuming - detected <= fault.stall_bound_s, f"{idle}: {result}"
    # The goal over each fault, on top of the bound its mechanism gives.
    stall_bound = min(fault.stall_bound_s, STALL_GOAL_S)
    check_task_flow(name, result, stall_bound, f"{stall_bound}", PUBLISH_BOUND_S, planned=fault.planned)
    again = f"{name}: {result['stall_after_heal_s']} s without a completion after the heal"
    assert result["stall_after_heal_s"] <= fault.after_heal_bound_s, f"{again} (bound {fault.after_heal_bound_s})"
