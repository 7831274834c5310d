"""Fixtures of the roles scenario's tests (the shared ones are in molecule/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import testinfra
import testinfra.host
from fleetlib.brokers import cluster_problems
from fleetlib.proxies import haproxy_server_status
from fleetlib.waits import problems_within
from roles_stack import CLUSTERS, PROXIES

# A SIGKILLed or drained broker is back, rejoined and UP on both proxies well within this.
WHOLE_TIMEOUT_S = 180


@pytest.fixture
def proxies(pytestconfig: pytest.Config) -> dict[str, testinfra.host.Host]:
    """Both proxies by name (HAProxy 3.0 and 2.6), for a test that disturbs the stack once and watches both."""
    inventory = pytestconfig.option.ansible_inventory
    return {name: testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory) for name in PROXIES}


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

    def problems() -> list[str]:
        brokers = [
            f"{seed.backend.get_hostname()}: {problem}"
            for seed, nodes in seeds
            for problem in cluster_problems(seed, nodes)
        ]
        expected = dict.fromkeys(CLUSTERS["rabbitmq"], "UP")
        return brokers + [
            f"{proxy.backend.get_hostname()}: {status}"
            for proxy in proxies
            if (status := haproxy_server_status(proxy)) != expected
        ]

    missing = problems_within(problems, WHOLE_TIMEOUT_S)
    assert not missing, f"not whole before the test: {missing}"
    yield
    missing = problems_within(problems, WHOLE_TIMEOUT_S)
    assert not missing, f"not whole after the test: {missing}"
