"""The failover stack's hosts as the tests reach them, and whether it is whole."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import testinfra.host
from celery import Celery
from faults import BROKERS, PASSWORD, PROXIES, VHOST
from fleetlib.brokers import cluster_running, rabbitmqctl_json
from fleetlib.hosts import container_address, get
from fleetlib.proxies import haproxy_server_status
from fleetlib.publishing import fleet_client
from fleetlib.tls import fleet_client_tls

# The broker whose view of the quorum queues counts (any: with no partition, all agree).
QUEUE_READER = BROKERS[1]


def proxies(host: testinfra.host.Host) -> list[testinfra.host.Host]:
    return [get(host, name) for name in PROXIES]


def proxy_endpoints(host: testinfra.host.Host) -> list[str]:
    """Both proxies as a publisher on the control node reaches them (by address: it has no Docker DNS)."""
    return [f"{container_address(proxy)}:5671" for proxy in proxies(host)]


def fleet_publisher(host: testinfra.host.Host, queue: str) -> Celery:
    """A producer on the control node, configured like the workers: through both proxies, over TLS with a
    certificate from the fleet's CA."""
    return fleet_client(proxy_endpoints(host), PASSWORD, VHOST, queue, fleet_client_tls())


def queues(broker: testinfra.host.Host) -> list[dict[str, Any]]:
    return rabbitmqctl_json(broker, "list_queues", "--vhost", VHOST, "name", "type", "leader", "members", "online")


def queue_state(broker: testinfra.host.Host, queue: str) -> dict[str, Any]:
    return next(row for row in queues(broker) if row["name"] == queue)


def _broker_whole(haproxy: testinfra.host.Host, name: str) -> bool:
    """This broker sees every broker running and no partition; the queue reader also sees every quorum queue
    with all members online and a leader."""
    broker = get(haproxy, name)
    if not cluster_running(broker, len(BROKERS)):
        return False
    if name != QUEUE_READER:
        return True
    quorum = [q for q in queues(broker) if q["type"] == "quorum"]
    return bool(quorum) and all(len(q["online"]) == len(BROKERS) and q["leader"] for q in quorum)


def _proxy_whole(haproxy: testinfra.host.Host, name: str) -> bool:
    return all(state == "UP" for state in haproxy_server_status(get(haproxy, name)).values())


def stack_whole(haproxy: testinfra.host.Host) -> bool:
    """Every broker running with no partition, every quorum queue with all members online and a leader,
    HAProxy showing every broker UP.

    Each host is asked in its own thread: rabbitmqctl starts an Erlang VM per call (about a second), and
    this is polled before and after every fault.
    """
    checks = [(_broker_whole, name) for name in BROKERS] + [(_proxy_whole, name) for name in PROXIES]
    with ThreadPoolExecutor(len(checks)) as pool:
        answers = [pool.submit(check, haproxy, name) for check, name in checks]
    try:
        return all(answer.result() for answer in answers)
    except AssertionError:  # a broker that is down, or not answering yet
        return False
