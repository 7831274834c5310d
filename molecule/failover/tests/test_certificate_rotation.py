"""Rotating every host's TLS key and certificate is one playbook run, under load, that loses no task
(docs/security.md#tls): `site.yml --tags tls -e pki_rotate=true` while a publisher goes on sending through the
proxies. Nothing restarts or reloads: the brokers re-read their files, the proxies' running workers take theirs over
the admin socket, the workers read theirs when they connect; afterwards every broker and proxy serves its new
certificate, and every proxy runs the same HAProxy workers as before. A reload would leave every established
session in an old HAProxy worker that no longer runs health checks (docs/haproxy.md): the broker faults' tests, which
run after this one on the same connections, would then get no RST."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import failover_results
import pytest
import testinfra.host
from failover_results import MaintenanceFlow
from faults import BROKERS, PROXIES, PUBLISH_BOUND_S, WORKERS
from fleetlib.hosts import get, root
from fleetlib.project import PROJECT_DIR
from fleetlib.waits import wait_for
from runs import FaultRun, check_task_flow
from stack import await_whole, problems_after

testinfra_hosts = ["ansible://fo-haproxy"]
pytestmark = pytest.mark.usefixtures("fresh_results")

Runner = Callable[..., subprocess.CompletedProcess[str]]
# Each tier's host and where its certificate lives.
CERTIFICATES = {
    BROKERS[0]: "/etc/rabbitmq/tls/host.crt",
    PROXIES[0]: "/etc/haproxy/tls/host.crt",
    WORKERS[0]: "/etc/celery-fleet/tls/host.crt",
}
# Nothing restarts and no connection is closed: tasks complete as they would without the run (its load on the
# shared cores aside).
STALL_BOUND_S = 5.0
# Who asks each server for its certificate (a host its firewall admits), and where.
SERVED = {BROKERS[0]: (PROXIES[0], f"{BROKERS[0]}:5671"), PROXIES[0]: (WORKERS[0], f"{PROXIES[0]}:5671")}


def fingerprints(host: testinfra.host.Host) -> dict[str, str]:
    """Each host's certificate file, by its SHA-256 fingerprint."""
    return {
        name: root(get(host, name), f"openssl x509 -noout -fingerprint -sha256 -in {path}")
        for name, path in CERTIFICATES.items()
    }


def served(host: testinfra.host.Host) -> dict[str, str]:
    """The certificate each broker and proxy shows a new connection, by its fingerprint (asked with the asking
    host's own certificate: both require one)."""
    shown = {}
    for name, (asking, endpoint) in SERVED.items():
        tls = CERTIFICATES[asking].rsplit("/", 1)[0]
        ask = f"openssl s_client -connect {endpoint} -cert {tls}/host.crt -key {tls}/host.key < /dev/null 2>/dev/null"
        shown[name] = root(get(host, asking), f"{ask} | openssl x509 -noout -fingerprint -sha256")
    return shown


def haproxy_workers(host: testinfra.host.Host) -> dict[str, str]:
    """Each proxy's HAProxy worker PIDs (the master's children): a reload would add new ones beside the old."""
    return {name: root(get(host, name), "pgrep -d ' ' -P $(cat /run/haproxy.pid)") for name in PROXIES}


def test_rotating_every_certificate_keeps_tasks_flowing(host: testinfra.host.Host, playbook_runner_at: Runner) -> None:
    await_whole(host, "before the rotation")
    before, workers_before = fingerprints(host), haproxy_workers(host)
    run = FaultRun(host, "rotation")
    run.start()
    assert wait_for(lambda: all(run.done(w) for w in WORKERS), timeout=60), "no task done before the rotation"
    run.fault_at = time.time()
    result = playbook_runner_at(
        PROJECT_DIR / "playbooks" / "site.yml", "--tags", "tls", "--extra-vars", "pki_rotate=true"
    )
    run.healed_at = time.time()
    missing = problems_after(host, 90, interval=1)
    run.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    published = run.publisher.tokens()
    finished = run.finished(published)
    flow = MaintenanceFlow(**run.task_flow(published, finished), **run.publishing(), **run.long_tasks())
    failover_results.record("maintenance", "certificate_rotation", flow)
    assert not missing, f"the stack was not whole 90 s after the rotation: {missing}; {flow}"
    after = fingerprints(host)
    assert [name for name in CERTIFICATES if after[name] == before[name]] == [], "not rotated"
    assert served(host) == {name: after[name] for name in SERVED}, "a server still shows its old certificate"
    assert haproxy_workers(host) == workers_before, "a proxy reloaded: its sessions lost their health checks"
    # No connection ends (the proxies keep their processes): no publish may wait longer than one the
    # publisher's own socket would end.
    check_task_flow("certificate rotation", flow, STALL_BOUND_S, f"{STALL_BOUND_S} s", PUBLISH_BOUND_S, planned=True)
