"""playbooks/diagnose.yml on the failover stack: the frozen and the leaking worker found, with evidence, and only
they restarted.

- Healthy: the two protected workers, busy with a publisher's tasks.
- Frozen: the control worker (the incident's settings: no heartbeat, straight to a broker). Its connection dies
  silently: every packet of that one flow is dropped on its host, as a stateful firewall or NAT that lost the flow
  does. The broker stays up and keeps the connection; the worker's socket stays ESTABLISHED and receives nothing,
  while the control's publisher fills its queue. Nothing heals that flow: the restart is the fix.
- Leaking: the anchor (Celery's defaults: no max-tasks-per-child) runs the leak task twice a second.

The monitoring tier must see the same two on its own: ConsumersFrozen for the control's queue and
CeleryDescriptorsGrowing for the anchor fire in Alertmanager within their bounds (tests/alerting.py), and resolve
after the remediation.

Runs: the planted fleet in check mode (the report must flag exactly the frozen and the leaking worker, so neither the
busy healthy workers nor anything else, and nothing changes), then for real with remediation on. (What makes each
verdict, healthy ones included, is unit-tested on recorded samples: tests/test_diagnosis.py.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import testinfra.host
from alerting import BOUNDS, alertmanager, check, measure, record, resolve_bound_s
from diagnosis import supervisor_programs
from faults import BROKERS, COMPLETED_LOG, PASSWORD, VHOST, WORKERS
from fleetlib.accounting import completions
from fleetlib.brokers import queue_messages
from fleetlib.hosts import container_address, get, root
from fleetlib.playbook_output import recap
from fleetlib.project import PROJECT_DIR
from fleetlib.publishing import Publisher, defaults_client
from fleetlib.tls import fleet_client_tls
from fleetlib.waits import wait_for
from incident import ANCHOR, CONTROL
from runs import TASK
from stack import await_whole, fleet_publisher

testinfra_hosts = ["ansible://fo-haproxy"]

REPORT = PROJECT_DIR / ".cache" / "diagnosis" / "report.json"
# The planted fleet's report, which docs/diagnosis.md shows (tools/diagnosis_report.py --adopt).
PLANTED = PROJECT_DIR / ".cache" / "diagnosis" / "planted.json"
# Short enough for a test: the window the hosts are watched, and the silence that makes the heartbeat-less control
# frozen. Its flow is cut before the run starts, so by the window's end it has been silent for longer than the
# window; before the cut it received a task every 0.5 s.
WINDOW = {"diagnose_window_s": 10, "diagnose_frozen_silence_s": 8, "diagnose_report_path": str(REPORT)}
LEAK_PER_TASK = 5
CONTROL_PROGRAM, ANCHOR_PROGRAM = "celery-control:celery-control-00", "celery-anchor:celery-anchor-00"
# What the monitoring tier must raise for the planted fleet: the control's queue frozen, the anchor leaking.
PLANTED_ALERTS = [("ConsumersFrozen", {"queue": "control"}), ("CeleryDescriptorsGrowing", {"instance": ANCHOR})]

Runner = Callable[..., subprocess.CompletedProcess[str]]


def diagnose(runner: Runner, *args: str, **extra: object) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Run the playbook as a user would; return the report's rows and how many tasks changed, per host."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.unlink(missing_ok=True)
    result = runner("playbooks/diagnose.yml", "-e", json.dumps({**WINDOW, **extra}), *args)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    changed = {host: counts["changed"] for host, counts in recap(result.stdout).items()}
    return json.loads(REPORT.read_text())["rows"], changed


def flagged(rows: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(host, role) -> the verdicts other than healthy."""
    found: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        if row["verdict"] != "healthy":
            found.setdefault((row["host"], row["role"]), set()).add(row["verdict"])
    return found


def main_pid(worker: testinfra.host.Host, program: str) -> int:
    return int(root(worker, f"supervisorctl pid {program}"))


def restarted_at(worker: testinfra.host.Host, program: str) -> float:
    """When Supervisor last started the program, on this runner's monotonic clock (to the second)."""
    (status,) = supervisor_programs(root(worker, f"supervisorctl status {program}"))
    return time.monotonic() - status["uptime_s"]


def broker_socket(worker: testinfra.host.Host, broker_ip: str) -> int:
    """The local port of the worker's one connection to the broker's AMQP port."""
    lines = root(worker, f"ss -HtnO state established dst {broker_ip}:5671").splitlines()
    assert len(lines) == 1, lines
    return int(lines[0].split()[2].rsplit(":", 1)[1])


@contextlib.contextmanager
def flow_cut(worker: testinfra.host.Host, port: int) -> Iterator[None]:
    """Every packet of one connection dropped on the worker's host: the flow is gone, the peers are not."""
    rules = [f"INPUT -p tcp --dport {port} -j DROP", f"OUTPUT -p tcp --sport {port} -j DROP"]
    root(worker, " && ".join(f"iptables -I {rule}" for rule in rules))
    try:
        yield
    finally:
        root(worker, " && ".join(f"iptables -D {rule}" for rule in rules))


def test_the_frozen_and_the_leaking_worker_are_found_and_only_they_restarted(
    host: testinfra.host.Host, playbook_runner_at: Runner
) -> None:
    await_whole(host, "before the fleet is planted")
    control, anchor = get(host, CONTROL), get(host, ANCHOR)
    healthy = {name: main_pid(get(host, name), "celery-default:celery-default-00") for name in WORKERS}
    prefix = uuid.uuid4().hex[:6]
    busy = Publisher(fleet_publisher(host, "celery"), TASK, f"diag-{prefix}", 0.5).start()
    control_publisher = Publisher(fleet_publisher(host, "control"), "celery_fleet_app.control_tasks.record",
                                  f"diag-control-{prefix}", 0.5).start()  # fmt: skip
    broker_ips = [container_address(get(host, b)) for b in BROKERS]
    # Straight to the brokers, each with its own name: only the CA's signature is verified.
    tls = dataclasses.replace(fleet_client_tls(), server_name="")
    anchor_app = defaults_client([f"{ip}:5671" for ip in broker_ips], PASSWORD, VHOST, "anchor", tls)
    leak = Publisher(anchor_app, "celery_fleet_app.anchor.leak_descriptors", f"diag-leak-{prefix}", 0.5,
                     task_args=[LEAK_PER_TASK])  # fmt: skip
    watch = alertmanager(host).start()
    try:
        done = lambda: completions(control, COMPLETED_LOG, f"diag-control-{prefix}")  # noqa: E731
        assert wait_for(done, timeout=60), "the control completed nothing before its flow was cut"
        port = broker_socket(control, broker_ips[0])
        frozen_pid = main_pid(control, CONTROL_PROGRAM)
        anchor_pid = main_pid(anchor, ANCHOR_PROGRAM)
        with flow_cut(control, port):
            cut = time.monotonic()
            leak.start()
            assert wait_for(lambda: leak.published, timeout=30), f"no leak task published ({leak.errors} errors)"
            # In check mode: it reads the same, and changes nothing.
            rows, changed = diagnose(playbook_runner_at, "--check")
            shutil.copy(REPORT, PLANTED)
            check_planted(rows, frozen_pid)
            assert set(changed.values()) == {0}, changed
            # Every Celery worker of the stack was seen, main and pool processes.
            assert {row["host"] for row in rows} == {*WORKERS, CONTROL, ANCHOR}
            # The monitoring tier sees the same two, on its own (docs/alerts.md).
            fired = lambda: all(watch.firing(name, labels, cut) for name, labels in PLANTED_ALERTS)  # noqa: E731
            wait_for(fired, timeout=max(BOUNDS[name] for name, _ in PLANTED_ALERTS) + 5)
            completed_before = {token for token, _ in done()}
            rows, changed = diagnose(playbook_runner_at, diagnose_remediate=True)
            check_planted(rows, frozen_pid)
            leak.stop()
            # The heals: the frozen control's is its restart. A restart does not cure a leak (the restarted anchor
            # leaks again with the tasks still queued for it): the leak's ends when its last task has run.
            healed = {"ConsumersFrozen": restarted_at(control, CONTROL_PROGRAM)}
            assert wait_for(lambda: queue_messages(get(host, BROKERS[1]), VHOST, "anchor") == 0, timeout=60), "no drain"
            healed["CeleryDescriptorsGrowing"] = time.monotonic()
            # Exactly the frozen and the leaking worker restarted; the healthy ones kept their processes.
            assert main_pid(control, CONTROL_PROGRAM) != frozen_pid
            assert main_pid(anchor, ANCHOR_PROGRAM) != anchor_pid
            assert {name: main_pid(get(host, name), "celery-default:celery-default-00") for name in WORKERS} == healthy
            assert {name for name, count in changed.items() if count} == {CONTROL, ANCHOR}, changed
            # The restarted control consumes again: the tasks that waited, and new ones.
            back = wait_for(lambda: len({t for t, _ in done()} - completed_before) > 5, timeout=60)
            assert back, "the control did not consume again after its restart"
            gone = lambda: not any(watch.firing(name, labels, cut) for name, labels in PLANTED_ALERTS)  # noqa: E731
            wait_for(gone, timeout=max(resolve_bound_s(name) for name, _ in PLANTED_ALERTS) + 5)
    finally:
        watch.stop()
        for publisher in (busy, control_publisher, leak):
            publisher.stop()
    # The alerts, timed from the cut (the leak started with it) and, resolved, from their heals.
    outcomes = [measure(watch, "planted", name, labels, cut, healed[name]) for name, labels in PLANTED_ALERTS]
    record("planted", outcomes)
    check(outcomes)


def check_planted(rows: list[dict[str, Any]], frozen_pid: int) -> None:
    """Flagged: the control's main process (frozen) and the anchor's pool processes (leaking); nothing else."""
    found = flagged(rows)
    shown = [(row["host"], row["pid"], row["verdict"], row["evidence"]) for row in rows if row["verdict"] != "healthy"]
    assert found == {(CONTROL, "main"): {"frozen"}, (ANCHOR, "pool"): {"leaking"}}, shown
    frozen = next(row for row in rows if row["host"] == CONTROL and row["role"] == "main")
    assert frozen["pid"] == frozen_pid
    assert "nothing received for" in frozen["evidence"][0], frozen
    assert frozen["evidence"][-1].endswith("ready message(s) wait in its queues"), frozen
    assert any("no AMQP heartbeat" in note for note in frozen["unseen"]), frozen
    for row in rows:
        if row["verdict"] == "leaking":
            assert row["evidence"][-1].startswith("descriptors grew"), row
            assert row["time_to_limit_s"] is not None, row


@pytest.mark.parametrize(
    ("extra", "named"),
    [("diagnose_window_s=ten", "diagnose_window_s"), ("diagnose_remediate=maybe", "diagnose_remediate"),
     ("diagnose_samples=1", "diagnose_samples")],
)  # fmt: skip
def test_a_bad_value_is_refused_before_anything_runs(playbook_runner_at: Runner, extra: str, named: str) -> None:
    result = playbook_runner_at("playbooks/diagnose.yml", "-e", extra)
    assert result.returncode != 0, result.stdout[-2000:]
    assert named in result.stdout, result.stdout[-2000:]
    assert "Watch the Celery workers" not in result.stdout, "the probe ran despite the bad value"
