"""RabbitMQ as the tests reach it: AMQP connections from the control node, rabbitmqctl, the health agent."""

from __future__ import annotations

import datetime
import itertools
import json
import re
from typing import Any, cast

import amqp
import testinfra.host

from fleetlib.hosts import lines_with
from fleetlib.project import role_defaults


def amqp_connection(address: str, user: str, password: str, vhost: str, **kwargs: object) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{address}:5672", userid=user, password=password, virtual_host=vhost, connect_timeout=10, **kwargs
    )
    connection.connect()
    return connection


def rabbitmqctl_json(host: testinfra.host.Host, *args: str) -> object:
    with host.sudo():
        return json.loads(host.check_output("rabbitmqctl --formatter json " + " ".join(args)))


def health_agent_reply(host: testinfra.host.Host, broker: str) -> str:
    """What the broker's health agent answers HAProxy, asked from `host`."""
    port = role_defaults("rabbitmq")["rabbitmq_health_agent_port"]
    script = f"import socket, sys; print(socket.create_connection((sys.argv[1], {port}), 2).recv(200).decode())"
    return host.check_output(f"python3 -c '{script}' {broker}").strip()


def cluster_problems(broker: testinfra.host.Host, nodes: int) -> list[str]:
    """What keeps the broker's node from answering rabbitmqctl with `nodes` running nodes and no partition."""
    with broker.sudo():
        status = broker.run("rabbitmqctl --formatter json cluster_status")
    if status.rc != 0:
        return [f"rabbitmqctl cluster_status failed (rc {status.rc}): {status.stderr.strip()[-200:]}"]
    cluster = json.loads(status.stdout)
    problems = []
    if len(cluster["running_nodes"]) != nodes:
        problems.append(f"running nodes {sorted(cluster['running_nodes'])}, not {nodes}")
    if cluster["partitions"]:
        problems.append(f"partitions {cluster['partitions']}")
    return problems


def queue_messages(broker: testinfra.host.Host, vhost: str, queue: str) -> int:
    """Ready and unacknowledged messages of a queue, as the broker counts them."""
    rows = cast(list[dict[str, Any]], rabbitmqctl_json(broker, "list_queues", "--vhost", vhost, "name", "messages"))
    return next(int(row["messages"]) for row in rows if row["name"] == queue)


# What a node logs (rabbit@<host>.log) when `rabbitmq-upgrade drain` closes a client connection, and when its stop
# does: the drain moved the client before the stop, the stop cut it.
DRAIN_STARTED = "is being put into maintenance (drain) mode"
DRAIN_CLOSED = 'because "Node was put into maintenance mode"'
STOP_STARTED = "Stopping RabbitMQ applications"
STOP_CLOSED = "broker forced connection closure with reason 'shutdown'"
STARTED = "Server startup complete"
# ...and when a client closes its connection itself: a worker's handover (celery_fleet_app.handover_step) moving
# it off the node before the drain. Only workers name their connections (connection_name, shown after " - "); the
# proxies' health checks, which close theirs too, do not.
CLIENT_CLOSED = "client unexpectedly closed TCP connection"
NAMED_CONNECTION = re.compile(r" - [^ ,]+@[^ ,]+, vhost")


def closed_by_workers(records: list[tuple[float, str]], start: float, end: float) -> int:
    """Worker connections their worker closed within [start, end): RabbitMQ logs the connection, then why."""
    return sum(
        1
        for (when, line), (_, reason) in itertools.pairwise(records)
        if start <= when < end and CLIENT_CLOSED in reason and NAMED_CONNECTION.search(line)
    )


def node_log(broker: testinfra.host.Host, hostname: str, since: float, marker: str = "") -> list[tuple[float, str]]:
    """(epoch, line) of the node's own log records after `since` (RabbitMQ stamps them in UTC, to the µs) that
    contain marker (every one by default)."""
    lines = lines_with(broker, f"/var/log/rabbitmq/rabbit@{hostname}.log", marker)
    records = []
    for line in lines:
        try:
            when = datetime.datetime.fromisoformat(line[:32].replace(" ", "T")).timestamp()
        except ValueError:
            continue
        if when > since:
            records.append((when, line))
    return records
