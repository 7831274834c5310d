"""The haproxy role: valid config, AMQP health checks, fast DOWN marking, seamless reloads."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import amqp
import pytest
import testinfra.host
from fleetlib.bounds import haproxy_detection_bound_s
from fleetlib.brokers import amqp_connection, health_agent_reply
from fleetlib.hosts import container_address, get
from fleetlib.playbook_output import changed_tasks
from fleetlib.project import PROJECT_DIR, scenario_group_vars
from fleetlib.proxies import haproxy_server_status
from fleetlib.waits import wait_for
from roles_stack import CLUSTERS, PROXIES
from testinfra.backend.base import CommandResult

testinfra_hosts = ["ansible://haproxy"]

SCENARIO_VARS = scenario_group_vars("roles")
APP_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_app_password"]
# The brokers behind the proxies.
BROKERS = CLUSTERS["rabbitmq"]
RELOAD = "celery_fleet.fleet.haproxy : Reload HAProxy"


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


def statuses(proxies: dict[str, testinfra.host.Host]) -> dict[str, dict[str, str]]:
    return {name: haproxy_server_status(proxy) for name, proxy in proxies.items()}


def all_up_within(proxies: dict[str, testinfra.host.Host], timeout: float) -> bool:
    return all(wait_for(lambda proxy=proxy: all_up(proxy), timeout=timeout) for proxy in proxies.values())


def seconds_until_down(
    proxies: dict[str, testinfra.host.Host], broker: str, since: float, interval: float = 0.5
) -> dict[str, float | None]:
    """Per proxy, the seconds from `since` until it shows the broker DOWN (None: not within 30 s). Each proxy is
    watched in a thread of its own, so that each time is its own."""

    def watch(proxy: testinfra.host.Host) -> float | None:
        down = wait_for(lambda: haproxy_server_status(proxy)[broker].startswith("DOWN"), timeout=30, interval=interval)
        return time.monotonic() - since if down else None

    with ThreadPoolExecutor(len(proxies)) as pool:
        futures = {name: pool.submit(watch, proxy) for name, proxy in proxies.items()}
    return {name: future.result() for name, future in futures.items()}


# The tests that disturb the stack (a broker killed, a broker drained, a reload) do it once for both proxies
# (HAProxy 3.0 and 2.6, the `proxies` fixture), watching and checking each proxy on its own.
@pytest.mark.usefixtures("stack_whole")
def test_killed_broker_is_marked_down_within_the_bound(proxies: dict[str, testinfra.host.Host]) -> None:
    """One SIGKILL, watched from both proxies at once: each marks the broker DOWN within the bound."""
    broker = get(proxies[PROXIES[0]], "rmq-trixie-3")
    assert all_up_within(proxies, timeout=30), statuses(proxies)
    with broker.sudo():
        broker.check_output("systemctl kill --signal=SIGKILL rabbitmq-server")
    try:
        elapsed = seconds_until_down(proxies, "rmq-trixie-3", since=time.monotonic(), interval=0.1)
    finally:
        with broker.sudo():
            broker.check_output("systemctl reset-failed rabbitmq-server; systemctl start rabbitmq-server")
    bound = haproxy_detection_bound_s()
    assert None not in elapsed.values(), f"not DOWN within 30 s: {elapsed}, {statuses(proxies)}"
    late = {name: seconds for name, seconds in elapsed.items() if seconds is not None and seconds > bound}
    assert late == {}, f"DOWN after {elapsed} s, bound {bound} s"
    assert all_up_within(proxies, timeout=120), statuses(proxies)


@pytest.mark.usefixtures("stack_whole")
def test_a_broker_in_maintenance_is_taken_out_and_put_back(proxies: dict[str, testinfra.host.Host]) -> None:
    """`rabbitmq-upgrade drain` (maintenance mode) closes the node's listeners: HAProxy's check and its
    health agent both see it, and it is out of both proxies until `rabbitmq-upgrade revive`."""
    broker = get(proxies[PROXIES[0]], "rmq-trixie-2")
    assert all_up_within(proxies, timeout=30), statuses(proxies)
    with broker.sudo():
        broker.check_output("rabbitmq-upgrade drain")
    try:
        out = seconds_until_down(proxies, "rmq-trixie-2", since=time.monotonic())
    finally:
        with broker.sudo():
            broker.check_output("rabbitmq-upgrade revive")
    assert None not in out.values(), f"not DOWN within 30 s: {out}, {statuses(proxies)}"
    assert all_up_within(proxies, timeout=60), statuses(proxies)


def test_every_health_agent_says_its_broker_can_serve(host: testinfra.host.Host) -> None:
    assert {broker: health_agent_reply(host, broker) for broker in BROKERS} == dict.fromkeys(BROKERS, "up")


def proxy_connection(proxy: testinfra.host.Host, **kwargs: object) -> amqp.Connection:
    """The app's user's AMQP connection through the proxy's plain listener."""
    return amqp_connection(container_address(proxy), "celery", APP_PASSWORD, "celery", **kwargs)


def keep_alive(connection: amqp.Connection, quiet: threading.Event) -> None:
    """Send a heartbeat every 3 s until told to stop."""
    while not quiet.wait(3):
        connection.send_heartbeat()


@pytest.mark.usefixtures("stack_whole")
def test_config_change_reloads_without_dropping_connections(
    proxies: dict[str, testinfra.host.Host], playbook_runner_at: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """One run changes both proxies' config, each with an AMQP connection open through it: each reloads (same
    master, a new worker) and its open connection still works."""
    limit = ",".join(proxies)
    before = {name: haproxy_pids(proxy) for name, proxy in proxies.items()}
    # Heartbeats (every 3 s, in a thread per connection) keep the connections from being idle ones, which HAProxy
    # cuts after timeout client (30 s): the run takes about that long.
    try:
        with contextlib.ExitStack() as opened:
            connections = {
                name: opened.enter_context(proxy_connection(proxy, heartbeat=10, confirm_publish=True))
                for name, proxy in proxies.items()
            }
            channels = {name: connection.channel() for name, connection in connections.items()}
            quiet = threading.Event()
            beating = [threading.Thread(target=keep_alive, args=(c, quiet)) for c in connections.values()]
            for thread in beating:
                thread.start()
            try:
                bigger = '{"haproxy_maxconn": 4097}'
                changed = playbook_runner_at("playbooks/haproxy.yml", "--limit", limit, "--extra-vars", bigger)
            finally:
                quiet.set()
                for thread in beating:
                    thread.join()
            assert changed.returncode == 0, changed.stdout
            reloaded = {name for task, name in changed_tasks(changed.stdout) if task == RELOAD}
            assert reloaded == set(proxies), changed.stdout
            # Each open connection still works after the reload: the broker confirms a publish on it (to the
            # default exchange: the app's user may write, not declare).
            for channel in channels.values():
                channel.basic_publish(amqp.Message("after reload"), exchange="", routing_key="after-reload")
    finally:
        # The role's defaults back, whatever happened above (the configure phase writes them).
        restored = playbook_runner_at("playbooks/haproxy.yml", "--limit", limit, "--tags", "configure")
    assert restored.returncode == 0, restored.stdout
    for name, proxy in proxies.items():
        (master_before, workers_before), (master_after, workers_after) = before[name], haproxy_pids(proxy)
        assert master_after == master_before, f"{name}: a reload must not restart the master process"
        assert workers_after - workers_before, f"{name}: a reload starts a new worker process"
