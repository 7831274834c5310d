"""Fixtures of the roles scenario's tests (the shared ones are in molecule/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import testinfra
from fleetlib.brokers import cluster_running
from fleetlib.proxies import haproxy_server_status
from fleetlib.waits import wait_for
from roles_stack import CLUSTERS, PROXIES

# A SIGKILLed or drained broker is back, rejoined and UP on both proxies well within this.
WHOLE_TIMEOUT_S = 180


@pytest.fixture
def stack_whole(pytestconfig: pytest.Config) -> Iterator[None]:
    """Before and after the test: every broker of both clusters running in a cluster of 3 nodes, with no partition,
    and both proxies showing every broker of theirs UP.

    The proxies and the workers share the Debian 13 cluster with the rabbitmq tests: a test that kills, drains or
    restarts a broker, reloads a proxy or rotates a password asks for this, so that no module depends on which one
    ran before it."""

    def host(name: str) -> testinfra.host.Host:
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=pytestconfig.option.ansible_inventory)

    # One node per cluster: its running nodes are every node of the cluster only when each broker runs.
    seeds = [(host(cluster[0]), len(cluster)) for cluster in CLUSTERS.values()]
    proxies = [host(name) for name in PROXIES]

    def whole() -> bool:
        return all(cluster_running(seed, nodes) for seed, nodes in seeds) and all(
            haproxy_server_status(proxy) == dict.fromkeys(CLUSTERS["rabbitmq"], "UP") for proxy in proxies
        )

    def state() -> str:
        return f"{[cluster_running(s, n) for s, n in seeds]}, {[haproxy_server_status(p) for p in proxies]}"

    assert wait_for(whole, timeout=WHOLE_TIMEOUT_S), f"not whole before the test: {state()}"
    yield
    assert wait_for(whole, timeout=WHOLE_TIMEOUT_S), f"not whole after the test: {state()}"
