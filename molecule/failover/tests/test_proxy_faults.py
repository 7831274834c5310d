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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import failover_results
import pytest
import testinfra.host
from failover_results import ProxyCase
from faults import (
    BROKERS,
    PROXY_FAULTS,
    PUBLISH_BOUND_S,
    RECONNECT_BOUND_S,
    WORKER_LOG,
    WORKERS,
    ProxyFault,
)
from fleetlib.hosts import get, log_records, log_times, restart_pool, root
from fleetlib.proxies import clients_on_first_proxy
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

Runner = Callable[..., subprocess.CompletedProcess[str]]


class ProxyRun(FaultRun):
    """One proxy fault: the workers, the publisher, and when things happened."""

    def __init__(self, host: testinfra.host.Host, name: str, runner: Runner) -> None:
        super().__init__(host, name)
        self.name, self.fault, self.runner = name, PROXY_FAULTS[name], runner

    def apply(self, arguments: str) -> None:
        fault: ProxyFault = self.fault
        if fault.playbook:
            result = self.runner(fault.playbook, "--limit", fault.on, *shlex.split(arguments))
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        else:
            root(get(self.haproxy, fault.on), arguments)

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
    await_whole(host, "before the fault")
    # Each worker on the first proxy of its list; one that is not, restarted, connects there.
    elsewhere = clients_on_first_proxy(proxies(host), list(BROKERS), list(run.workers.values()), WORKER_LOG)
    with ThreadPoolExecutor() as pool:
        list(pool.map(lambda worker: restart_pool(worker, "celery-default", WORKER_LOG), elsewhere))
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
    missing = problems_after(host, 90, interval=1)
    run.publisher.stop()
    result = account(run)
    failover_results.record("proxy_cases", name, result)
    assert not missing, f"{name}: the stack was not whole 90 s after the heal: {missing}; {result}"
    check(run.fault, name, result)


def account(run: ProxyRun) -> ProxyCase:
    published = run.publisher.tokens()
    done = run.finished(published)
    since = run.since
    reconnected = {worker: run.reconnected(worker) for worker in WORKERS}
    return ProxyCase(
        fault=run.name,
        on=run.fault.on,
        time_to_detection_s={worker: since(run.lost_at(worker)) for worker in WORKERS},
        time_to_consuming_s={worker: since(run.consuming_again(worker)) for worker in WORKERS},
        time_to_reconnect_s={worker: since(when) for worker, (when, _) in reconnected.items()},
        reconnected_through={worker: proxy for worker, (_, proxy) in reconnected.items()},
        detection_bound_s=run.fault.detection_bound_s,
        stall_bound_s=run.fault.stall_bound_s,
        **run.task_flow(published, done),
        **run.publishing(),
    )


def check(fault: ProxyFault, name: str, result: ProxyCase) -> None:
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
    # A publish under way on the first proxy ends once the publisher's own socket noticed it gone.
    check_task_flow(name, result, fault.stall_bound_s, f"{fault.stall_bound_s}", PUBLISH_BOUND_S)
