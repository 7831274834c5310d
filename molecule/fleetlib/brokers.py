"""RabbitMQ as the tests reach it: AMQP connections from the control node, rabbitmqctl, the health agent."""

from __future__ import annotations

import json

import amqp
import testinfra.host

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


def cluster_running(broker: testinfra.host.Host, nodes: int) -> bool:
    """Whether the broker's node answers rabbitmqctl and sees `nodes` running nodes in its cluster, no partition."""
    with broker.sudo():
        status = broker.run("rabbitmqctl --formatter json cluster_status")
    if status.rc != 0:
        return False
    cluster = json.loads(status.stdout)
    return len(cluster["running_nodes"]) == nodes and not cluster["partitions"]
