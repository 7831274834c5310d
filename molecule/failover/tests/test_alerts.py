"""Alerts on the failover stack, and the drill that draws them: a real broker fault fires the matching alerts in
Alertmanager within their bound, they resolve after the network heals, and the drill's picture of it is a PNG
drawn from this run's data. (The incident's frozen worker and a descriptor leak fire theirs in
tests/test_diagnose.py's planted fleet: one plant, two concerns.)

A broker blackholed, as in the lost-FIN case, by `make drill`'s own code (fleetlib.drill): every client moved onto
fo-rabbitmq-3, tasks published through both proxies, then every packet of fo-rabbitmq-3 dropped but SSH's. Both
proxies' health checks mark it DOWN (BrokerDownInProxy, one per proxy), and Prometheus's scrapes of it time out
(RabbitMQNodeDown). The fault is held until all three fire; the heal is the network's: the rules are removed,
nothing is restarted.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import testinfra.host
from alerting import BOUNDS, Outcome, check, monitoring_url, outcome, record, resolve_bound_s
from faults import BROKERS, COMPLETED_LOG, FAULTS, HEAL_BOUND_S, PROXIES, WORKER_LOG, WORKERS
from fleetlib.accounting import completions
from fleetlib.drill import Drill, DrillPlan, DrillStack
from fleetlib.drill_plot import draw, picture_problems
from fleetlib.hosts import get
from fleetlib.project import PROJECT_DIR
from stack import await_whole, fleet_publisher, problems_after

testinfra_hosts = ["ansible://fo-haproxy"]

TARGET = BROKERS[2]
EXPECTED = [("BrokerDownInProxy", {"instance": proxy, "server": TARGET}) for proxy in PROXIES]
EXPECTED.append(("RabbitMQNodeDown", {"instance": TARGET}))
DRILL = PROJECT_DIR / ".cache" / "drill" / "failover-blackhole"
Runner = Callable[..., subprocess.CompletedProcess[str]]


def drill_stack(host: testinfra.host.Host) -> DrillStack:
    return DrillStack(
        brokers={name: get(host, name) for name in BROKERS},
        proxies={name: get(host, name) for name in PROXIES},
        workers={name: get(host, name) for name in WORKERS},
        app=fleet_publisher(host, "celery"),
        prometheus_url=monitoring_url(host, "prometheus"),
        alertmanager_url=monitoring_url(host, "alertmanager"),
        completed_log=COMPLETED_LOG,
        worker_log=WORKER_LOG,
    )


def drilled_outcome(drilled: dict[str, Any], alert: str, labels: dict[str, str]) -> Outcome:
    """What the drill recorded of one expected alert: seconds from the fault to firing, from the heal to resolving."""
    seen = [a for a in drilled["alerts"] if a["alert"] == alert and labels.items() <= a["labels"].items()]
    fired = min((a["fired_s"] for a in seen), default=None)
    resolved = [a["resolved_s"] for a in seen]
    resolved_after = None if not seen or None in resolved else round(max(resolved) - drilled["healed_s"], 1)
    return outcome("blackhole", alert, labels, fired, resolved_after)


def test_a_blackholed_broker_fires_down_in_both_proxies_and_node_down(host: testinfra.host.Host) -> None:
    await_whole(host, "before the fault")
    fault = FAULTS["blackhole"]
    # Past the bound, the check below says which alert was late.
    plan = DrillPlan("blackhole", TARGET, fault.inject, fault.heal,
                     hold_s=max(BOUNDS[name] for name, _ in EXPECTED) + 5, baseline_s=5, settle_s=3,
                     recover_s=max(resolve_bound_s(name) for name, _ in EXPECTED) + 5)  # fmt: skip
    drill = Drill(drill_stack(host), plan)
    fired = lambda d: all(d.watch.firing(name, labels, d.fault_mono) for name, labels in EXPECTED)  # noqa: E731
    drilled = drill.run(hold_until=fired)
    DRILL.parent.mkdir(parents=True, exist_ok=True)
    DRILL.with_suffix(".json").write_text(json.dumps(drilled, indent=1, sort_keys=True) + "\n")
    draw(drilled, DRILL.with_suffix(".png"))
    outcomes = [drilled_outcome(drilled, name, labels) for name, labels in EXPECTED]
    record("blackhole", outcomes)
    check(outcomes)
    assert drilled["tasks_lost"] == 0, drilled
    executions = sum(len(completions(get(host, w), COMPLETED_LOG, drill.prefix)) for w in WORKERS)
    check_picture(DRILL, executions)
    missing = problems_after(host, HEAL_BOUND_S)
    assert not missing, f"the stack did not heal within {HEAL_BOUND_S} s: {missing}"


def check_picture(drill: Path, executions: int) -> None:
    """A valid, drawn PNG, from this run's record, whose data are the run's: every task execution the workers
    logged, and the target DOWN in each proxy during the fault only."""
    drilled = json.loads(drill.with_suffix(".json").read_text())
    problems = picture_problems(drill.with_suffix(".png"), drilled)
    assert not problems, problems
    assert sum(n for _, n in drilled["series"]["completions_per_s"]) == executions, drilled["series"]
    for proxy in PROXIES:
        # Samples the admin socket answered (under load, one may time out: an empty view).
        states = [(when, view.get(TARGET)) for when, view in drilled["series"]["haproxy"][proxy] if view]
        assert all(state == "UP" for when, state in states if when < 0), f"{proxy}: {states}"
        assert any(0 < when < drilled["healed_s"] and state == "DOWN" for when, state in states), f"{proxy}: {states}"
        assert states[-1][1] == "UP", f"{proxy} did not show {TARGET} UP again: {states}"


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
