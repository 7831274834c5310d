"""Broker failure: the workers get a RST from HAProxy, reconnect, and lose no task.

Each fault hits the broker both protected workers are connected to (they are
pinned to it through HAProxy first), while tasks keep being published. The
evidence comes from packet captures on the worker hosts, the workers' logs and
the tasks' own completion log. The control worker, connected straight to the
same broker with Celery's defaults, shows what happens without the proxy.
Results go to molecule/failover/results/latest.json.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest
import testinfra.host
import yaml
from celery import Celery
from celery_fleet_app.config import FleetConfig, celery_settings
from conftest import (
    PROJECT_DIR,
    container_address,
    haproxy_command,
    haproxy_detection_bound_s,
    haproxy_server_status,
    rabbitmqctl_json,
    wait_for,
)

testinfra_hosts = ["ansible://fo-haproxy"]

RESULTS = PROJECT_DIR / "molecule" / "failover" / "results" / "latest.json"
SCENARIO_VARS = yaml.safe_load((PROJECT_DIR / "molecule" / "failover" / "molecule.yml").read_text())
PASSWORD = SCENARIO_VARS["provisioner"]["inventory"]["group_vars"]["all"]["celery_worker_broker_password"]
WORKER = yaml.safe_load((PROJECT_DIR / "roles" / "celery_worker" / "defaults" / "main.yml").read_text())
COMPLETED_LOG = f"{WORKER['celery_worker_home']}/completed.log"
WORKER_LOG = f"{WORKER['celery_worker_log_dir']}/celery-default-00.log"
TARGET, PUBLISH_VIA = "fo-rabbitmq-1", "fo-rabbitmq-3"
WORKERS = ("fo-worker-1", "fo-worker-2")

# Worst case from a broker failing to HAProxy marking it DOWN (and resetting
# its sessions), from the role's own check settings; see haproxy/haproxy.cfg.
DETECTION_S = haproxy_detection_bound_s()
# The RST must arrive within the detection bound plus scheduling slack.
RST_BOUND_S = DETECTION_S + 2
# Celery reconnects at once after a reset; allow for its consumer restart.
RECONNECT_BOUND_S = RST_BOUND_S + 15
CONTROL_WINDOW_S = 60

# (inject, heal). A node cut off for longer than net_ticktime (60 s) is left
# partitioned from its peers once the network is back; restarting it is the
# operator's standard remedy, and healing here does the same.
FAULTS = {
    # The lost-FIN case from the incident: the broker vanishes from the network.
    "blackhole": ("iptables -I INPUT -j DROP && iptables -I OUTPUT -j DROP",
                  "iptables -D INPUT -j DROP && iptables -D OUTPUT -j DROP && systemctl restart rabbitmq-server"),
    # Only the broker's outgoing packets are lost.
    "one-way-loss": ("iptables -I OUTPUT -j DROP", "iptables -D OUTPUT -j DROP && systemctl restart rabbitmq-server"),
    # The broker's processes stop; its kernel still completes TCP handshakes.
    "freeze": ("systemctl kill --signal=SIGSTOP rabbitmq-server", "systemctl kill --signal=SIGCONT rabbitmq-server"),
    # The broker dies at once.
    "crash": ("systemctl kill --signal=SIGKILL rabbitmq-server",
              "systemctl reset-failed rabbitmq-server; systemctl start rabbitmq-server"),
}  # fmt: skip


def get(host: testinfra.host.Host, name: str) -> testinfra.host.Host:
    return host.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)


def root(host: testinfra.host.Host, command: str) -> str:
    with host.sudo():
        return host.check_output(command)


def client(address: str, queue: str = "celery") -> Celery:
    """A publisher on the control node, configured like the workers."""
    config = FleetConfig(broker_endpoints=[f"{address}:5672"], user="celery", password=PASSWORD, vhost="celery")
    app = Celery("publisher", set_as_current=False)
    app.conf.update(celery_settings(config))
    app.conf.task_default_queue = queue
    return app


@dataclass
class Publisher:
    """Publishes one uniquely named `record` task every `interval` seconds, in a thread."""

    app: Celery
    task: str
    prefix: str
    interval: float = 0.1
    published: list[tuple[str, float]] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Publisher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            token = f"{self.prefix}-{number:05d}"
            try:
                # Counted as published only once the broker confirmed it.
                self.app.send_task(self.task, args=[token])
            except Exception:
                self.errors += 1
                time.sleep(0.5)
                continue
            self.published.append((token, time.time()))
            number += 1
            time.sleep(self.interval)


def completions(host: testinfra.host.Host, prefix: str) -> list[tuple[str, float]]:
    log = host.file(COMPLETED_LOG)
    if not log.exists:
        return []
    lines = [line.split() for line in log.content_string.splitlines()]
    return [(token, float(stamp)) for token, _, stamp in lines if token.startswith(prefix)]


def log_times(host: testinfra.host.Host, path: str, marker: str) -> list[float]:
    """Epoch times of the Celery log lines that contain marker (the hosts log in UTC)."""
    times = []
    for line in root(host, f"grep -F {marker!r} {path} || true").splitlines():
        stamp = line[1 : line.index(":", line.index(",")) if "," in line else 0]
        when = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=datetime.UTC)
        times.append(when.timestamp())
    return times


def start_capture(host: testinfra.host.Host, name: str, expression: str) -> None:
    root(host, f"rm -f /root/{name}.txt /root/{name}.err")
    root(
        host,
        f"nohup tcpdump -i eth0 -n -tt -l -U '{expression}' > /root/{name}.txt 2> /root/{name}.err < /dev/null &",
    )
    assert wait_for(lambda: "listening on" in root(host, f"cat /root/{name}.err"), timeout=15)


def stop_capture(host: testinfra.host.Host, name: str) -> list[float]:
    """Stop tcpdump and return the epoch times of the captured packets."""
    root(host, "pkill -INT tcpdump || true")
    assert wait_for(lambda: host.run("pgrep tcpdump").rc != 0, timeout=15)
    return [float(line.split()[0]) for line in root(host, f"cat /root/{name}.txt").splitlines() if line.strip()]


def stack_healthy(haproxy: testinfra.host.Host) -> bool:
    broker = get(haproxy, TARGET)
    try:
        status = rabbitmqctl_json(broker, "cluster_status")
    except AssertionError:
        return False
    servers = haproxy_server_status(haproxy)
    return len(status["running_nodes"]) == 3 and all(state == "UP" for state in servers.values())


def pin_workers_to_target(haproxy: testinfra.host.Host) -> None:
    """Make both workers' connections go through HAProxy to the broker under test."""
    others = [name for name in ("fo-rabbitmq-1", "fo-rabbitmq-2", "fo-rabbitmq-3") if name != TARGET]
    for name in others:
        haproxy_command(haproxy, f"disable server rabbitmq/{name}")
    for name in WORKERS:
        worker = get(haproxy, name)
        ready_before = len(log_times(worker, WORKER_LOG, " ready."))
        root(worker, "supervisorctl restart 'celery-default:*'")
        assert wait_for(lambda w=worker, n=ready_before: len(log_times(w, WORKER_LOG, " ready.")) > n, timeout=90)
    for name in others:
        haproxy_command(haproxy, f"enable server rabbitmq/{name}")
    assert wait_for(lambda: stack_healthy(haproxy), timeout=60)


def record(name: str, result: dict[str, object]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.setdefault("faults", {})
    data["generated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    data["bounds_s"] = {"rst": RST_BOUND_S, "reconnect": RECONNECT_BOUND_S, "detection": DETECTION_S}
    if name == "control":
        data["control"] = result
    else:
        data["faults"][name] = result
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


@pytest.fixture(scope="module", autouse=True)
def fresh_results() -> None:
    RESULTS.unlink(missing_ok=True)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_gives_rst_reconnect_and_no_lost_task(host: testinfra.host.Host, fault: str) -> None:
    haproxy, target = host, get(host, TARGET)
    workers = [get(host, name) for name in WORKERS]
    control = get(host, "fo-control-worker")
    assert wait_for(lambda: stack_healthy(haproxy), timeout=180)
    pin_workers_to_target(haproxy)
    haproxy_ip, target_ip = container_address(haproxy), container_address(target)
    for worker in workers:
        start_capture(worker, f"rst-{fault}", f"tcp and src host {haproxy_ip} and tcp[tcpflags] & tcp-rst != 0")
    with_control = fault == "blackhole"
    if with_control:
        # The control must start from a live connection to the broker under test.
        assert wait_for(lambda: established(control, target_ip), timeout=120), root(control, "ss -Htn")
        start_capture(control, "control", f"tcp and host {target_ip} and tcp[tcpflags] & tcp-rst != 0")

    prefix = f"{fault}-{uuid.uuid4().hex[:6]}"
    publisher = Publisher(client(container_address(get(host, PUBLISH_VIA))), "celery_fleet_app.tasks.record", prefix)
    control_publisher = None
    if with_control:
        control_app = client(container_address(get(host, PUBLISH_VIA)), queue="control")
        control_publisher = Publisher(control_app, "celery_fleet_app.control_tasks.record", f"control-{prefix}", 0.5)
    publisher.start()
    assert wait_for(lambda: len(publisher.published) >= 20, timeout=60), "publishing before the fault"

    inject, heal = FAULTS[fault]
    fault_at = time.time()
    root(target, inject)
    if control_publisher:
        control_publisher.start()

    def reconnected(worker: testinfra.host.Host) -> bool:
        return any(when > fault_at for when in log_times(worker, WORKER_LOG, "Connected to amqp"))

    try:
        assert wait_for(lambda: all(reconnected(w) for w in workers), timeout=RECONNECT_BOUND_S + 30, interval=1)
        # Fixed durations, not conditions: tasks keep coming after the reconnect,
        # and the control run is observed for its whole window.
        time.sleep(10)
        if control_publisher:
            time.sleep(max(fault_at + CONTROL_WINDOW_S - time.time(), 0))
            control_result = observe_control(control, target_ip, control_publisher, fault_at)
    finally:
        publisher.stop()
        if control_publisher:
            control_publisher.stop()
        root(target, heal)

    rst_times = {w.backend.get_hostname(): stop_capture(w, f"rst-{fault}") for w in workers}
    reconnect_times = {
        w.backend.get_hostname(): min(t for t in log_times(w, WORKER_LOG, "Connected to amqp") if t > fault_at)
        for w in workers
    }
    assert wait_for(lambda: stack_healthy(haproxy), timeout=180)
    published = {token for token, _ in publisher.published}

    def done() -> Counter[str]:
        return Counter(token for w in workers for token, _ in completions(w, prefix))

    assert wait_for(lambda: published <= set(done()), timeout=180, interval=2)
    counts = done()
    completed_after = [
        when for w in workers for _, when in completions(w, prefix) if when > max(reconnect_times.values())
    ]
    result = {
        "time_to_rst_s": {name: round(min((t for t in times if t >= fault_at), default=float("inf")) - fault_at, 2)
                          for name, times in rst_times.items()},
        "time_to_reconnect_s": {name: round(t - fault_at, 2) for name, t in reconnect_times.items()},
        "time_to_first_task_after_fault_s": round(min(completed_after) - fault_at, 2) if completed_after else None,
        "tasks_published": len(published),
        "tasks_completed": len(set(counts) & published),
        "tasks_lost": len(published - set(counts)),
        "tasks_duplicated": sum(1 for token in published if counts[token] > 1),
        "publish_retries": publisher.errors,
    }  # fmt: skip
    record(fault, result)
    if with_control:
        record("control", control_result)
        assert control_result["rst_packets"] == 0, control_result
        assert control_result["socket_established"], control_result
        assert control_result["tasks_completed_in_window"] == 0, control_result
    for name, seconds in result["time_to_rst_s"].items():
        assert seconds <= RST_BOUND_S, f"{fault}: {name} got no RST from HAProxy within {RST_BOUND_S} s: {result}"
    for name, seconds in result["time_to_reconnect_s"].items():
        assert seconds <= RECONNECT_BOUND_S, f"{fault}: {name} reconnected after {seconds} s: {result}"
    assert result["tasks_lost"] == 0, result


def established(host: testinfra.host.Host, peer_ip: str) -> bool:
    """Whether the host holds an ESTABLISHED TCP connection to the peer's AMQP port."""
    lines = root(host, "ss -Htn").splitlines()
    return any(line.split()[0] == "ESTAB" and line.split()[-1] == f"{peer_ip}:5672" for line in lines)


def observe_control(
    control: testinfra.host.Host, target_ip: str, publisher: Publisher, fault_at: float
) -> dict[str, object]:
    """The control worker at the end of its window: still frozen on the dead socket?"""
    sockets = root(control, "ss -Htn")
    still_established = established(control, target_ip)
    rst = stop_capture(control, "control")
    published = {token for token, _ in publisher.published}
    completed = {token for token, _ in completions(control, "control-") if token in published}
    with control.sudo():
        status = control.check_output("supervisorctl status")
    return {
        "window_s": round(time.time() - fault_at, 1),
        "rst_packets": len([t for t in rst if t >= fault_at]),
        "socket_established": still_established,
        "sockets": sockets.splitlines(),
        "supervisor_status": status.split()[1] if status else "",
        "tasks_published_in_window": len(published),
        "tasks_completed_in_window": len(completed),
    }
