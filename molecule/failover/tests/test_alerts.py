"""Alerts on the failover stack: a real broker fault fires the matching alerts in Alertmanager within their
bound, and they resolve after the network heals. (The incident's frozen worker and a descriptor leak fire theirs
in tests/test_diagnose.py's planted fleet: one plant, two concerns.)

A broker blackholed, as in the lost-FIN case: every packet of fo-rabbitmq-3 dropped but SSH's. Both proxies' health
checks mark it DOWN (BrokerDownInProxy, one per proxy), and Prometheus's scrapes of it time out (RabbitMQNodeDown).
The heal is the network's: the rules are removed, nothing is restarted.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable

import pytest
import testinfra.host
from alerting import BOUNDS, alertmanager, check, measure, record, resolve_bound_s
from faults import BROKERS, FAULTS, HEAL_BOUND_S, PROXIES
from fleetlib.hosts import get, root
from fleetlib.waits import wait_for
from stack import stack_whole

testinfra_hosts = ["ansible://fo-haproxy"]

TARGET = BROKERS[2]
Runner = Callable[..., subprocess.CompletedProcess[str]]


def test_a_blackholed_broker_fires_down_in_both_proxies_and_node_down(host: testinfra.host.Host) -> None:
    assert wait_for(lambda: stack_whole(host), timeout=HEAL_BOUND_S), "the stack is not whole"
    watch = alertmanager(host).start()
    broker = get(host, TARGET)
    expected = [("BrokerDownInProxy", {"instance": proxy, "server": TARGET}) for proxy in PROXIES]
    expected.append(("RabbitMQNodeDown", {"instance": TARGET}))
    fault = FAULTS["blackhole"]
    try:
        start = time.monotonic()
        root(broker, fault.inject)
        try:
            all_fired = lambda: all(watch.firing(name, labels, start) for name, labels in expected)  # noqa: E731
            # Past the bound, the check below says which alert was late.
            wait_for(all_fired, timeout=max(BOUNDS[name] for name, _ in expected) + 5)
        finally:
            root(broker, fault.heal)
            healed = time.monotonic()
        none_left = lambda: not any(watch.firing(name, labels, start) for name, labels in expected)  # noqa: E731
        wait_for(none_left, timeout=max(resolve_bound_s(name) for name, _ in expected) + 5)
    finally:
        watch.stop()
    outcomes = [measure(watch, "blackhole", name, labels, start, healed) for name, labels in expected]
    record("blackhole", outcomes)
    check(outcomes)
    assert wait_for(lambda: stack_whole(host), timeout=HEAL_BOUND_S), "the stack did not heal"


@pytest.mark.parametrize(
    ("extra", "named"),
    [("monitoring_scrape_interval_s=ten", "monitoring_scrape_interval_s"),
     ("monitoring_alert_fd_ratio=2", "monitoring_alert_fd_ratio"),
     ("monitoring_alertmanager_receiver=pager", "monitoring_alertmanager_receiver"),
     ("node_exporter_firewall=maybe", "node_exporter_firewall")],
)  # fmt: skip
def test_a_bad_value_is_refused_before_any_change(playbook_runner_at: Runner, extra: str, named: str) -> None:
    result = playbook_runner_at("playbooks/monitoring.yml", "-e", extra)
    assert result.returncode != 0, result.stdout[-2000:]
    assert named in result.stdout, result.stdout[-2000:]
    assert not re.search(r"changed=[1-9]", result.stdout), result.stdout[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
