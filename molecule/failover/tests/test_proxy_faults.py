"""Proxy failure: the workers move to the other proxy within a bound derived from their settings, and no task is lost.

Two proxies serve every broker; the workers and the publisher list both
(Celery's failover list) and start on the first. Each fault hits the first
proxy (or one worker's path to it) while tasks are published every 0.1 s.
A proxy that vanishes sends no RST: only the worker's AMQP heartbeat and
socket settings can notice, the incident one tier up. Results go to the same
results file as the broker faults (section "proxy_cases").
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import failover_results
import pytest
import testinfra.host
from faults import (
    COMPLETED_LOG,
    PASSWORD,
    PROXY_FAULTS,
    RECONNECT_BOUND_S,
    VHOST,
    WORKER_LOG,
    WORKERS,
    ProxyFault,
)
from fleetlib.accounting import Account, completions, longest_stall
from fleetlib.hosts import get, log_records, log_times, restart_pool, root
from fleetlib.publishing import Publisher, fleet_client
from fleetlib.waits import wait_for
from stack import proxy_endpoints, stack_whole

testinfra_hosts = ["ansible://fo-haproxy"]

TASK = "celery_fleet_app.tasks.record"
LOST = "Connection to broker lost"
CONNECTED = "Connected to amqp://"
# How long tasks flow under a fault no worker may notice (a reload), and under the others once all moved.
QUIET_HOLD_S = 10.0
HOLD_AFTER_MOVE_S = 3.0

Runner = Callable[..., subprocess.CompletedProcess[str]]


class ProxyRun:
    """One proxy fault: the workers, the publisher, and when things happened."""

    def __init__(self, host: testinfra.host.Host, name: str, runner: Runner) -> None:
        self.host, self.name, self.fault, self.runner = host, name, PROXY_FAULTS[name], runner
        self.workers = {worker: get(host, worker) for worker in WORKERS}
        self.prefix = f"{name}-{uuid.uuid4().hex[:6]}"
        app = fleet_client(proxy_endpoints(host), PASSWORD, VHOST, "celery")
        self.publisher = Publisher(app, TASK, self.prefix)
        self.fault_at = self.healed_at = 0.0

    def apply(self, arguments: str) -> None:
        fault: ProxyFault = self.fault
        if fault.playbook:
            result = self.runner(fault.playbook, "--limit", fault.on, *shlex.split(arguments))
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        else:
            root(get(self.host, fault.on), arguments)

    def done(self, worker: str) -> list[tuple[str, float]]:
        return completions(self.workers[worker], COMPLETED_LOG, self.prefix)

    def lost_at(self, worker: str) -> float:
        times = [t for t in log_times(self.workers[worker], WORKER_LOG, LOST) if t >= self.fault_at]
        return min(times, default=float("inf"))

    def reconnected(self, worker: str) -> tuple[float, str]:
        """When the worker connected again after losing its connection, and through which proxy."""
        lost = self.lost_at(worker)
        for when, line in log_records(self.workers[worker], WORKER_LOG, CONNECTED):
            if when >= lost:
                return when, line.split("@", 1)[1].split(":", 1)[0]
        return float("inf"), ""

    def consuming_again(self, worker: str) -> float:
        since = self.reconnected(worker)[0]
        return min((when for _, when in self.done(worker) if when > since), default=float("inf"))

    def moved(self) -> bool:
        return all(self.consuming_again(worker) < float("inf") for worker in self.fault.hits)


@pytest.mark.parametrize("name", PROXY_FAULTS)
def test_workers_survive_a_proxy_fault(host: testinfra.host.Host, name: str, playbook_runner_at: Runner) -> None:
    run = ProxyRun(host, name, playbook_runner_at)
    assert wait_for(lambda: stack_whole(host), timeout=90), "the stack is not whole before the fault"
    # Restarted, each worker connects to the first proxy of its list.
    for worker in run.workers.values():
        restart_pool(worker, "celery-default", WORKER_LOG)
    run.publisher.start()
    assert wait_for(lambda: all(run.done(w) for w in WORKERS), timeout=60), "no task done before the fault"
    run.fault_at = time.time()
    try:
        run.apply(run.fault.inject)
        if run.fault.hits:
            bound = (run.fault.detection_bound_s or 60.0) + run.fault.stall_bound_s
            wait_for(run.moved, timeout=bound + 30, interval=1)
            wait_for(lambda: False, timeout=HOLD_AFTER_MOVE_S)
        else:
            wait_for(lambda: time.time() >= run.fault_at + QUIET_HOLD_S, timeout=QUIET_HOLD_S + 5)
    finally:
        run.apply(run.fault.heal)
        run.healed_at = time.time()
    whole = wait_for(lambda: stack_whole(host), timeout=90, interval=1)
    run.publisher.stop()
    result = account(run)
    failover_results.record("proxy_cases", name, result)
    assert whole, f"{name}: the stack was not whole 90 s after the heal: {result}"
    check(run.fault, name, result)


def account(run: ProxyRun) -> dict[str, Any]:
    published = run.publisher.tokens()

    def finished() -> list[tuple[str, float]]:
        return [pair for worker in WORKERS for pair in run.done(worker)]

    wait_for(lambda: published <= {token for token, _ in finished()}, timeout=120, interval=2)
    done = finished()
    since = lambda when: round(when - run.fault_at, 2)  # noqa: E731
    reconnected = {worker: run.reconnected(worker) for worker in WORKERS}
    return {
        "fault": run.name,
        "on": run.fault.on,
        "time_to_detection_s": {worker: since(run.lost_at(worker)) for worker in WORKERS},
        "time_to_consuming_s": {worker: since(run.consuming_again(worker)) for worker in WORKERS},
        "time_to_reconnect_s": {worker: since(when) for worker, (when, _) in reconnected.items()},
        "reconnected_through": {worker: proxy for worker, (_, proxy) in reconnected.items()},
        "detection_bound_s": run.fault.detection_bound_s,
        "stall_bound_s": run.fault.stall_bound_s,
        "longest_stall_s": round(longest_stall([when for _, when in done], run.fault_at, run.healed_at), 2),
        "fault_held_s": round(run.healed_at - run.fault_at, 1),
        **Account(published, Counter(token for token, _ in done)).summary(),
        "publish_retries": run.publisher.errors,
        "longest_publish_s": round(run.publisher.longest_publish_s(), 2),
    }


def check(fault: ProxyFault, name: str, result: dict[str, Any]) -> None:
    for worker in WORKERS:
        detected, consuming = result["time_to_detection_s"][worker], result["time_to_consuming_s"][worker]
        if worker not in fault.hits:
            assert detected == float("inf"), f"{name}: {worker} lost its connection: {result}"
            continue
        if fault.detection_bound_s is not None:
            late = f"{name}: {worker} noticed after {detected} s (bound {fault.detection_bound_s}): {result}"
            assert detected <= fault.detection_bound_s, late
        reconnect = result["time_to_reconnect_s"][worker] - detected
        slow = f"{name}: {worker} reconnected {reconnect:.2f} s after noticing (bound {RECONNECT_BOUND_S}): {result}"
        assert reconnect <= RECONNECT_BOUND_S, slow
        through = result["reconnected_through"][worker]
        assert fault.moves_to in ("", through), f"{name}: {worker} reconnected through {through}: {result}"
        idle = f"{name}: {worker} consumed {consuming - detected:.2f} s after noticing (bound {fault.stall_bound_s})"
        assert consuming - detected <= fault.stall_bound_s, f"{idle}: {result}"
    stall = f"{name}: no task completed for {result['longest_stall_s']} s (bound {fault.stall_bound_s}): {result}"
    assert result["longest_stall_s"] <= fault.stall_bound_s, stall
    assert result["tasks_lost"] == 0, f"{name}: tasks lost: {result}"
