"""Fixtures of the failover scenario's tests (the shared ones are in molecule/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import failover_results
import pytest
import testinfra.host
from faults import BROKERS
from fleetlib.hosts import get, root
from fleetlib.project import role_defaults

# The brokers' free disk limit, as the role sets it (a share of RAM).
DISK_FREE_LIMIT = role_defaults("rabbitmq")["rabbitmq_disk_free_limit_percent_of_ram"] / 100


# The modules that run last, in this order. The rolling restart keeps both cores busy with Ansible and RabbitMQ:
# after the fault tests, which mostly wait, it runs once the roles scenario beside this one has ended more often
# than not. The replacement changes the stack for good (fo-rabbitmq-4 in place of a broker): it runs after every
# other test, and the installed tarball's site.yml and monitoring.yml last, on the inventory that describes the
# result.
LAST = ("test_maintenance.py", "test_replace_node.py", "test_installed_tarball.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: LAST.index(item.path.name) + 1 if item.path.name in LAST else 0)


@pytest.fixture(scope="session")
def fresh_results() -> Path:
    """This verify run's results file, emptied once, before the first module that writes to it (in any order)."""
    failover_results.start_run()
    return failover_results.RESULTS


@pytest.fixture
def alarm_on_one_broker(host: testinfra.host.Host) -> Iterator[str]:
    """A disk alarm on the second broker (its free-space limit above its disk), as the brokers raise it."""
    broker = get(host, BROKERS[1])
    root(broker, "rabbitmqctl set_disk_free_limit 1000000GB")
    try:
        yield f"rabbit@{BROKERS[1]} has a disk alarm"
    finally:
        root(broker, f"rabbitmqctl set_disk_free_limit mem_relative {DISK_FREE_LIMIT}")
