"""The haproxy role: valid config, AMQP health checks, fast DOWN marking, seamless reloads."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable

import amqp
import pytest
import testinfra.host
from fleetlib.bounds import haproxy_detection_bound_s
from fleetlib.brokers import amqp_connection, health_agent_reply
from fleetlib.hosts import container_address, get
from fleetlib.project import PROJECT_DIR, scenario_group_vars
from fleetlib.proxies import haproxy_server_status
from fleetlib.waits import wait_for
from roles_stack import CLUSTERS
from testinfra.backend.base import CommandResult

testinfra_hosts = ["ansible://haproxy"]

SCENARIO_VARS = scenario_group_vars("roles")
APP_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_app_password"]
# The brokers behind the proxies.
BROKERS = CLUSTERS["rabbitmq"]


def all_up(host: testinfra.host.Host) -> bool:
    return haproxy_server_status(host) == dict.fromkeys(BROKERS, "UP")


def haproxy_pids(host: testinfra.host.Host) -> tuple[int, set[int]]:
    """The master's PID and its workers' PIDs."""
    master = int(host.check_output("systemctl show --property MainPID --value haproxy"))
    workers = {int(pid) for pid in host.check_output(f"pgrep --parent {master} haproxy").split()}
    return master, workers


def haproxy_check(host: testinfra.host.Host, path: str) -> CommandResult:
    """`haproxy -c` in zero-warning mode (-dW): a warning fails it, as an error does."""
    with host.sudo():
        return host.run(f"haproxy -dW -c -f {path}")


def test_installed_config_is_valid_without_a_warning(host: testinfra.host.Host) -> None:
    result = haproxy_check(host, "/etc/haproxy/haproxy.cfg")
    assert (result.rc, "WARNING" in result.stdout + result.stderr) == (0, False), result.stdout + result.stderr


def test_reference_file_is_valid_as_shipped_without_a_warning(host: testinfra.host.Host) -> None:
    # The Debian 13 brokers carry the reference's server names as network aliases (Docker's DNS resolves them,
    # molecule.yml), so it is checked as is.
    name = host.backend.get_hostname()
    subprocess.run(
        ["docker", "cp", str(PROJECT_DIR / "haproxy" / "haproxy.cfg"), f"{name}:/root/reference.cfg"], check=True
    )
    result = haproxy_check(host, "/root/reference.cfg")
    assert (result.rc, "WARNING" in result.stdout + result.stderr) == (0, False), result.stdout + result.stderr


def test_every_backend_is_up(host: testinfra.host.Host) -> None:
    assert wait_for(lambda: all_up(host), timeout=30), haproxy_server_status(host)


def test_amqp_client_connects_through_the_proxy(host: testinfra.host.Host) -> None:
    # The broker confirms a publish (the app's user may write, not declare) through the proxy's plain listener.
    with amqp_connection(container_address(host), "celery", APP_PASSWORD, "celery", confirm_publish=True) as connection:
        connection.channel().basic_publish(amqp.Message("through the proxy"), exchange="", routing_key="nowhere")


def test_prometheus_exporter_serves_metrics(host: testinfra.host.Host) -> None:
    # This scenario's inventory has no monitoring hosts: the exporter is local only, on the default port.
    url = "http://127.0.0.1:8405/metrics"
    body = host.check_output(
        f"python3 -c 'import urllib.request; print(urllib.request.urlopen(\"{url}\").read().decode())'"
    )
    assert "haproxy_backend_active_servers" in body


@pytest.mark.usefixtures("stack_whole")
def test_killed_broker_is_marked_down_within_the_bound(host: testinfra.host.Host) -> None:
    broker = get(host, "rmq-trixie-3")
    assert wait_for(lambda: all_up(host), timeout=30), haproxy_server_status(host)
    with broker.sudo():
        broker.check_output("systemctl kill --signal=SIGKILL rabbitmq-server")
    killed = time.monotonic()
    marked_down = wait_for(
        lambda: haproxy_server_status(host)["rmq-trixie-3"].startswith("DOWN"), timeout=30, interval=0.1
    )
    elapsed = time.monotonic() - killed
    with broker.sudo():
        broker.check_output("systemctl reset-failed rabbitmq-server; systemctl start rabbitmq-server")
    assert marked_down, haproxy_server_status(host)
    assert elapsed <= haproxy_detection_bound_s(), f"DOWN after {elapsed:.2f} s, bound {haproxy_detection_bound_s()} s"
    assert wait_for(lambda: all_up(host), timeout=120), haproxy_server_status(host)


@pytest.mark.usefixtures("stack_whole")
def test_a_broker_in_maintenance_is_taken_out_and_put_back(host: testinfra.host.Host) -> None:
    """`rabbitmq-upgrade drain` (maintenance mode) closes the node's listeners: HAProxy's check and its
    health agent both see it, and it is out until `rabbitmq-upgrade revive`."""
    broker = get(host, "rmq-trixie-2")
    assert wait_for(lambda: all_up(host), timeout=30), haproxy_server_status(host)
    with broker.sudo():
        broker.check_output("rabbitmq-upgrade drain")
    try:
        out = wait_for(lambda: haproxy_server_status(host)["rmq-trixie-2"].startswith("DOWN"), timeout=30)
    finally:
        with broker.sudo():
            broker.check_output("rabbitmq-upgrade revive")
    assert out, haproxy_server_status(host)
    assert wait_for(lambda: all_up(host), timeout=60), haproxy_server_status(host)


def test_every_health_agent_says_its_broker_can_serve(host: testinfra.host.Host) -> None:
    assert {broker: health_agent_reply(host, broker) for broker in BROKERS} == dict.fromkeys(BROKERS, "up")


def keep_alive(connection: amqp.Connection, quiet: threading.Event) -> None:
    """Send a heartbeat every 3 s until told to stop."""
    while not quiet.wait(3):
        connection.send_heartbeat()


@pytest.mark.usefixtures("stack_whole")
def test_config_change_reloads_without_dropping_connections(
    host: testinfra.host.Host, playbook_runner_at: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    name = host.backend.get_hostname()
    master_before, workers_before = haproxy_pids(host)
    # Heartbeats (every 3 s, in a thread) keep the connection from being an idle one, which HAProxy cuts after
    # timeout client (30 s): the run takes about that long.
    try:
        with amqp_connection(container_address(host), "celery", APP_PASSWORD, "celery", heartbeat=10,
                             confirm_publish=True) as connection:  # fmt: skip
            channel = connection.channel()
            quiet = threading.Event()
            beating = threading.Thread(target=keep_alive, args=(connection, quiet))
            beating.start()
            try:
                bigger = '{"haproxy_maxconn": 4097}'
                changed = playbook_runner_at("playbooks/haproxy.yml", "--limit", name, "--extra-vars", bigger)
            finally:
                quiet.set()
                beating.join()
            assert changed.returncode == 0, changed.stdout
            assert "RUNNING HANDLER [celery_fleet.fleet.haproxy : Reload HAProxy]" in changed.stdout
            # The open connection still works after the reload: the broker confirms a publish on it (to the
            # default exchange: the app's user may write, not declare).
            channel.basic_publish(amqp.Message("after reload"), exchange="", routing_key="after-reload")
    finally:
        # The role's defaults back, whatever happened above (the configure phase writes them).
        restored = playbook_runner_at("playbooks/haproxy.yml", "--limit", name, "--tags", "configure")
    assert restored.returncode == 0, restored.stdout
    master_after, workers_after = haproxy_pids(host)
    assert master_after == master_before, "a reload must not restart the master process"
    assert workers_after - workers_before, "a reload starts a new worker process"
