"""The celery_worker role: Supervisor, unprivileged workers, sysctls, a task round trip, a bounded leak."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import testinfra.host
from celery import Celery
from celery_fleet_app.config import FleetConfig, broker_url, celery_settings
from fleetlib.accounting import completions
from fleetlib.brokers import rabbitmqctl_json
from fleetlib.hosts import container_address, get, lines_with, root
from fleetlib.project import role_defaults, scenario_group_vars
from fleetlib.waits import wait_for
from roles_stack import WORKERS

testinfra_hosts = ["ansible://celery_workers"]

SCENARIO_VARS = scenario_group_vars("roles")
ROLE_DEFAULTS = role_defaults("celery_worker")
MAX_TASKS_PER_CHILD = SCENARIO_VARS["celery_workers"]["celery_worker_max_tasks_per_child"]
LEAK_PER_TASK = 5
LEAK_TASKS = 300
# How long the task in flight through a restart works: long enough to be running when the stop comes.
WORK_S = 8
COMPLETED_LOG = f"{ROLE_DEFAULTS['celery_worker_home']}/completed.log"
# Where the `work` task notes each start (tasks.started_log: beside the completed log).
STARTED_LOG = f"{ROLE_DEFAULTS['celery_worker_home']}/started.log"
APP_USER = "celery"
APP_PASSWORD = SCENARIO_VARS["all"]["celery_worker_broker_password"]
APP_VHOST = "celery"
KOMBU_VHOST = "kombu-reference"
# Run on a worker with the workers' own kombu: what Celery 5.5+ declares for the task queue `celery`
# (Queue.declare: exchange, queue, binding) and its DelayedDelivery bootstep (the two kombu calls).
KOMBU_DECLARES = """
import sys
from kombu import Connection, Exchange, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)
queue = Queue("celery", Exchange("celery", type="topic"), routing_key="celery",
              queue_arguments={"x-queue-type": "quorum"})
with Connection(sys.argv[1], connect_timeout=10) as connection:
    declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
    queue(connection.default_channel).declare()
    bind_queue_to_native_delayed_delivery_exchange(connection, queue)
"""


def client(host: testinfra.host.Host) -> Celery:
    """A Celery client on the control node, configured like the workers, through the proxy."""
    proxy = container_address(get(host, "haproxy-trixie"))
    config = FleetConfig(broker_endpoints=[f"{proxy}:5672"], user=APP_USER, password=APP_PASSWORD, vhost=APP_VHOST)
    app = Celery("client", set_as_current=False)
    app.conf.update(celery_settings(config))
    return app


def queue_drained(host: testinfra.host.Host) -> bool:
    queues = rabbitmqctl_json(get(host, "rmq-trixie-1"), "list_queues", "--vhost", "celery", "name", "messages")
    return all(queue["messages"] == 0 for queue in queues if queue["name"] == "celery")


def worker_main_pids(host: testinfra.host.Host) -> list[int]:
    """PIDs of the Celery worker processes Supervisor runs (from `supervisorctl status`)."""
    with host.sudo():
        status = host.run("supervisorctl status").stdout
    return [int(line.split(" pid ")[1].split(",")[0]) for line in status.splitlines() if " pid " in line]


def pool_pids(host: testinfra.host.Host) -> set[int]:
    return {int(pid) for main in worker_main_pids(host) for pid in host.check_output(f"pgrep -P {main}").split()}


def open_descriptors(host: testinfra.host.Host, pid: int) -> int:
    with host.sudo():
        return int(host.check_output(f"ls /proc/{pid}/fd | wc -l"))


def test_every_worker_is_running_under_supervisor(host: testinfra.host.Host) -> None:
    def all_running() -> bool:
        with host.sudo():
            lines = host.check_output("supervisorctl status").splitlines()
        return bool(lines) and all(" RUNNING " in line for line in lines)

    assert wait_for(all_running, timeout=60)


def test_workers_and_pool_processes_run_as_the_unprivileged_user(host: testinfra.host.Host) -> None:
    for pid in [*worker_main_pids(host), *pool_pids(host)]:
        assert host.check_output(f"ps -o user= -p {pid}") == ROLE_DEFAULTS["celery_worker_user"]


def test_supervisor_socket_is_root_only_and_not_on_the_network(host: testinfra.host.Host) -> None:
    socket_file = host.file("/var/run/supervisor.sock")
    assert socket_file.is_socket
    assert socket_file.user == "root"
    assert socket_file.mode == 0o700
    assert "[inet_http_server]" not in host.file("/etc/supervisor/supervisord.conf").content_string


def test_keepalive_sysctls_are_in_effect(host: testinfra.host.Host) -> None:
    expected = {
        "net.ipv4.tcp_keepalive_time": ROLE_DEFAULTS["celery_worker_sysctl_keepalive_time"],
        "net.ipv4.tcp_keepalive_intvl": ROLE_DEFAULTS["celery_worker_sysctl_keepalive_intvl"],
        "net.ipv4.tcp_keepalive_probes": ROLE_DEFAULTS["celery_worker_sysctl_keepalive_probes"],
        "net.ipv4.tcp_retries2": ROLE_DEFAULTS["celery_worker_sysctl_tcp_retries2"],
    }
    assert {name: host.sysctl(name) for name in expected} == expected
    assert host.file("/etc/sysctl.d/60-celery-worker.conf").contains("net.ipv4.tcp_keepalive_time")


def recorded(host: testinfra.host.Host, token: str) -> bool:
    """Whether either worker ran the `record` task with this token."""
    workers = [
        host,
        get(host, "worker-bookworm" if "trixie" in host.backend.get_hostname() else "worker-trixie"),
    ]
    return any(lines_with(worker, COMPLETED_LOG, token, missing_ok=True) for worker in workers)


def test_a_task_round_trips(host: testinfra.host.Host) -> None:
    token = f"roundtrip-{uuid.uuid4().hex}"
    with client(host) as app:
        app.send_task("celery_fleet_app.tasks.record", args=[token])
    assert wait_for(lambda: recorded(host, token), timeout=60)


def test_max_tasks_per_child_bounds_a_descriptor_leak(host: testinfra.host.Host) -> None:
    if host.backend.get_hostname() != "worker-trixie":
        pytest.skip("one run feeds and measures both workers")
    before = {name: pool_pids(get(host, name)) for name in WORKERS}
    with client(host) as app:
        for _ in range(LEAK_TASKS):
            app.send_task("celery_fleet_app.tasks.leak_descriptors", args=[LEAK_PER_TASK])
    assert wait_for(lambda: queue_drained(host), timeout=300)
    for name, pids in before.items():
        worker = get(host, name)
        after = pool_pids(worker)
        assert after.isdisjoint(pids), f"{name}: pool processes were never replaced ({pids} -> {after})"
        bound = baseline_descriptors(worker) + MAX_TASKS_PER_CHILD * LEAK_PER_TASK
        counts = {pid: open_descriptors(worker, pid) for pid in after}
        assert max(counts.values()) <= bound, f"{name}: open descriptors {counts} exceed {bound}"


def baseline_descriptors(host: testinfra.host.Host) -> int:
    """Descriptors a pool process holds before running any task: those of its parent, the worker."""
    return max(open_descriptors(host, pid) for pid in worker_main_pids(host))


def test_workers_and_publishers_declare_nothing_at_run_time(host: testinfra.host.Host) -> None:
    """The role denies the app user `configure` (which every exchange.declare and queue.declare needs, even of an
    existing object): restarted workers consume and a new publisher publishes, so neither declares anything."""
    if host.backend.get_hostname() != "worker-trixie":
        pytest.skip("one run restarts both workers")
    broker = get(host, "rmq-trixie-1")
    log = f"{ROLE_DEFAULTS['celery_worker_log_dir']}/celery-default-00.log"
    permissions = rabbitmqctl_json(broker, "list_permissions", "--vhost", "celery")
    assert {"user": "celery", "configure": "^$", "write": ".*", "read": ".*"} in permissions
    workers = {name: get(host, name) for name in WORKERS}
    before = {name: int(root(worker, f"wc -l < {log}")) for name, worker in workers.items()}
    # Both at once: the task below can only reach a restarted worker.
    with ThreadPoolExecutor(len(workers)) as pool:
        list(pool.map(lambda worker: root(worker, "supervisorctl restart 'celery-default:*'"), workers.values()))

    def since_restart(name: str) -> str:
        return root(workers[name], f"tail -n +{before[name] + 1} {log}")

    for name in workers:
        assert wait_for(lambda name=name: " ready." in since_restart(name), timeout=90), (name, since_restart(name))
    token = f"nodeclare-{uuid.uuid4().hex}"
    with client(host) as app:
        app.send_task("celery_fleet_app.tasks.record", args=[token])
    assert wait_for(lambda: recorded(host, token), timeout=60), {name: since_restart(name) for name in workers}
    for name in workers:
        output = since_restart(name)
        for refused in ("ACCESS_REFUSED", "Connection to broker lost"):
            assert refused not in output, (name, output)


def table_arguments(value: Any) -> dict[str, Any]:
    """rabbitmqctl's JSON gives arguments as a map or as a list of AMQP table entries ([key, (type,) value])."""
    if isinstance(value, dict):
        return value
    return {entry[0]: entry[-1] for entry in value or []}


def topology(broker: testinfra.host.Host, vhost: str) -> dict[str, Any]:
    """A vhost's exchanges (name: type), queues (name: arguments) and bindings, as rabbitmqctl lists them.

    Leaves out RabbitMQ's own: the amq.* exchanges, the default exchange and its implicit bindings."""

    def listing(*args: str) -> list[dict[str, Any]]:
        rows = rabbitmqctl_json(broker, args[0], "--vhost", vhost, *args[1:])
        assert isinstance(rows, list)
        return rows

    exchanges = listing("list_exchanges", "name", "type")
    queues = listing("list_queues", "name", "arguments")
    bindings = listing("list_bindings", "source_name", "destination_name", "destination_kind", "routing_key")
    return {
        "exchanges": {
            entry["name"]: entry["type"]
            for entry in exchanges
            if entry["name"] and not entry["name"].startswith("amq.")
        },
        "queues": {entry["name"]: table_arguments(entry["arguments"]) for entry in queues},
        "bindings": sorted(
            (entry["source_name"], entry["destination_name"], entry["destination_kind"], entry["routing_key"])
            for entry in bindings
            if entry["source_name"]
        ),
    }


def test_topology_matches_what_kombu_declares(host: testinfra.host.Host) -> None:
    """The role's deploy-time topology is exactly what kombu itself declares for the queue `celery`.

    kombu declares into a scratch vhost, set up like the app's, through the proxy with the app's user."""
    if host.backend.get_hostname() != "worker-trixie":
        pytest.skip("one worker's kombu declares into the scratch vhost")
    broker = get(host, "rmq-trixie-1")
    with broker.sudo():
        broker.run(f"rabbitmqctl delete_vhost {KOMBU_VHOST}")  # left over from an interrupted run
        broker.check_output(f"rabbitmqctl add_vhost {KOMBU_VHOST} --default-queue-type quorum")
    try:
        with broker.sudo():
            broker.check_output(f"rabbitmqctl set_permissions --vhost {KOMBU_VHOST} {APP_USER} '.*' '.*' '.*'")
        url = broker_url(["haproxy-trixie:5672"], APP_USER, APP_PASSWORD, KOMBU_VHOST)
        python = f"{ROLE_DEFAULTS['celery_worker_venv']}/bin/python"
        declared = host.run("%s -c %s %s", python, KOMBU_DECLARES, url)
        assert declared.rc == 0, declared.stderr
        kombu = topology(broker, KOMBU_VHOST)
        role = topology(broker, APP_VHOST)
        assert kombu["queues"], "kombu declared nothing"
        assert role["exchanges"] == kombu["exchanges"]
        assert role["queues"] == kombu["queues"]
        assert role["bindings"] == kombu["bindings"]
    finally:
        with broker.sudo():
            broker.check_output(f"rabbitmqctl delete_vhost {KOMBU_VHOST}")


def test_a_restart_lets_a_running_task_finish_and_run_once(host: testinfra.host.Host) -> None:
    """Supervisor's stop is Celery's warm shutdown: a task running when the worker is restarted ends during the
    stop, and is never started again. (With the TERM sent to the whole process group, each pool process died
    mid-task, and the task started again, in full, on whichever worker took it back.)"""
    if host.backend.get_hostname() != "worker-trixie":
        pytest.skip("one run restarts both workers")
    workers = [get(host, name) for name in WORKERS]
    token = f"restart-{uuid.uuid4().hex}"
    with client(host) as app:
        app.send_task("celery_fleet_app.tasks.work", args=[token, WORK_S])
    assert wait_for(lambda: len(runs(workers, STARTED_LOG, token)) == 1, timeout=60), "the task never started"
    stopping = time.time()
    with ThreadPoolExecutor(len(workers)) as pool:
        list(pool.map(lambda worker: root(worker, "supervisorctl restart 'celery-default:*'"), workers))
    restarted = time.time()
    assert wait_for(lambda: queue_drained(host), timeout=60)
    starts, ends = runs(workers, STARTED_LOG, token), runs(workers, COMPLETED_LOG, token)
    assert (len(starts), len(ends)) == (1, 1), f"started at {starts}, completed at {ends}"
    # Still running when the stop came (else this proves nothing), and done before the restarts were.
    assert stopping < ends[0] <= restarted, f"stop at {stopping}, completed at {ends[0]}, restarted at {restarted}"


def runs(workers: list[testinfra.host.Host], log: str, token: str) -> list[float]:
    """When the workers logged this token (`work`'s starts, or completions): one time per run."""
    return [when for worker in workers for _, when in completions(worker, log, token)]
