"""The failover stack's hosts as the tests reach them, and whether it is whole."""

from __future__ import annotations

from typing import Any

import testinfra.host
from faults import BROKERS, PROXIES, VHOST
from fleetlib.brokers import rabbitmqctl_json
from fleetlib.hosts import container_address, get
from fleetlib.proxies import haproxy_server_status


def proxies(host: testinfra.host.Host) -> list[testinfra.host.Host]:
    return [get(host, name) for name in PROXIES]


def proxy_endpoints(host: testinfra.host.Host) -> list[str]:
    """Both proxies as a publisher on the control node reaches them (by address: it has no Docker DNS)."""
    return [f"{container_address(proxy)}:5672" for proxy in proxies(host)]


def queues(broker: testinfra.host.Host) -> list[dict[str, Any]]:
    return rabbitmqctl_json(broker, "list_queues", "--vhost", VHOST, "name", "type", "leader", "members", "online")


def queue_state(broker: testinfra.host.Host, queue: str) -> dict[str, Any]:
    return next(row for row in queues(broker) if row["name"] == queue)


def stack_whole(haproxy: testinfra.host.Host) -> bool:
    """Every broker running with no partition, every quorum queue with all members online and a leader,
    HAProxy showing every broker UP."""
    try:
        for name in BROKERS:
            status = rabbitmqctl_json(get(haproxy, name), "cluster_status")
            if len(status["running_nodes"]) != len(BROKERS) or status["partitions"]:
                return False
        quorum = [q for q in queues(get(haproxy, BROKERS[1])) if q["type"] == "quorum"]
    except AssertionError:
        return False
    queues_whole = bool(quorum) and all(len(q["online"]) == len(BROKERS) and q["leader"] for q in quorum)
    return queues_whole and all(
        state == "UP" for proxy in proxies(haproxy) for state in haproxy_server_status(proxy).values()
    )
