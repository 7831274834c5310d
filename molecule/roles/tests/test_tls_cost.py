"""What TLS and the proxy cost: confirmed publishes and round trips, four ways, from one worker (tools/tls_cost.py).

The scenario has plain listeners on besides TLS (the failover stack has them off), so one run compares them.
"""

from __future__ import annotations

import json
import sys

import testinfra.host
from fleetlib.hosts import get
from fleetlib.project import PROJECT_DIR, role_defaults

sys.path.insert(0, str(PROJECT_DIR / "tools"))
import tls_cost

testinfra_hosts = ["ansible://worker-trixie"]

APP_USER = "celery"
VHOST = "tls-cost"
MESSAGES, BODY_BYTES, ROUNDS = 1000, 1024, 2
WORKER = role_defaults("celery_worker")
SERVER_NAME = role_defaults("haproxy")["haproxy_tls_server_name"]
# Each way: where it connects, and whether over TLS (verifying which name).
WAYS = {
    "direct-plain": {"address": "rmq-trixie-1:5672"},
    "direct-tls": {"address": "rmq-trixie-1:5671", "server_name": "rmq-trixie-1"},
    "proxy-plain": {"address": "haproxy-trixie:5672"},
    "proxy-tls": {"address": "haproxy-trixie:5671", "server_name": SERVER_NAME},
}
# Run on the worker with its own py-amqp, TLS files and password (read from its app.json, never on argv).
MEASURE = """
import json, pathlib, sys, threading, time, amqp
from celery_fleet_app.config import broker_tls, load_config
config = load_config(pathlib.Path(sys.argv[1]))
way, vhost, count, size = json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def connect():
    # The worker's own TLS options (broker_tls), verifying the name of where this way connects.
    tls = {**broker_tls(config.tls), "server_hostname": way["server_name"]} if "server_name" in way else None
    connection = amqp.Connection(host=way["address"], userid=config.user, password=config.password,
                                 virtual_host=vhost, ssl=tls, confirm_publish=True)
    connection.connect()
    return connection
queue = "tls-cost-" + str(time.time_ns())
publisher = connect()
channel = publisher.channel()
channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-queue-type": "quorum"})
consumer = connect()
consuming = consumer.channel()
consuming.basic_qos(0, 200, False)
received = []
consuming.basic_consume(queue, callback=lambda message: (consuming.basic_ack(message.delivery_tag), received.append(1)))
def drain():
    while len(received) < count:
        try:
            consumer.drain_events(timeout=1)
        except TimeoutError:
            pass
thread = threading.Thread(target=drain)
thread.start()
body = b"x" * size
started = time.monotonic()
for _ in range(count):
    channel.basic_publish(amqp.Message(body, delivery_mode=2), routing_key=queue)
published = time.monotonic()
thread.join(120)
finished = time.monotonic()
channel.queue_delete(queue)
print(json.dumps({"publish_per_s": round(count / (published - started)),
                  "round_trip_per_s": round(count / (finished - started)), "received": len(received)}))
"""


def measure(host: testinfra.host.Host, way: dict[str, str]) -> dict[str, int]:
    python = f"{WORKER['celery_worker_venv']}/bin/python"
    app_json = f"{WORKER['celery_worker_config_dir']}/app.json"
    with host.sudo():
        output = host.check_output(
            "%s -c %s %s %s %s %s %s", python, MEASURE, app_json, json.dumps(way), VHOST, str(MESSAGES), str(BODY_BYTES)
        )
    result = json.loads(output)
    assert result.pop("received") == MESSAGES, way
    return result


def package_version(host: testinfra.host.Host, package: str) -> str:
    """The upstream version of an installed Debian package (3.0.11 of 3.0.11-1+deb13u4)."""
    return host.check_output("dpkg-query -W -f '${Version}' %s", package).split("-")[0]


def test_tls_and_the_proxy_cost_little_throughput(host: testinfra.host.Host) -> None:
    broker = get(host, "rmq-trixie-1")
    with broker.sudo():
        broker.run(f"rabbitmqctl delete_vhost {VHOST}")  # left over from an interrupted run
        broker.check_output(f"rabbitmqctl add_vhost {VHOST} --default-queue-type quorum")
        broker.check_output(f"rabbitmqctl set_permissions --vhost {VHOST} {APP_USER} '.*' '.*' '.*'")
    try:
        # Rounds interleave the ways, so a slow moment of the shared machine is not one way's alone.
        rounds = [{name: measure(host, way) for name, way in WAYS.items()} for _ in range(ROUNDS)]
    finally:
        with broker.sudo():
            broker.check_output(f"rabbitmqctl delete_vhost {VHOST}")
    best = {name: {key: max(r[name][key] for r in rounds) for key in rounds[0][name]} for name in WAYS}
    versions = {
        "debian": host.check_output("cut -d. -f1 /etc/debian_version"),
        "rabbitmq": package_version(broker, "rabbitmq-server"),
        "haproxy": package_version(get(host, "haproxy-trixie"), "haproxy"),
    }
    results = {"messages": MESSAGES, "body_bytes": BODY_BYTES, "rounds": ROUNDS, "client": "worker-trixie",
               **versions, "ways": best}  # fmt: skip
    tls_cost.RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tls_cost.RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(tls_cost.block(results))
    # Every way moved every message; the ratios are quoted, against a goal, not held to it here.
    assert all(way["publish_per_s"] > 0 and way["round_trip_per_s"] > 0 for way in best.values())
