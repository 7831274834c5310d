"""The broker replacement's inventories: the scenario's own (fo-rabbitmq-1..3 the cluster, fo-rabbitmq-4 a spare
host in no tier) and the one an operator writes to replace a broker with the spare (docs/maintenance.md,
"Replacing a broker"): the cluster group lists the brokers that stay and the new host; the old host stays in the
inventory, out of the group.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import testinfra.host
import yaml
from faults import BROKERS
from fleetlib.brokers import rabbitmqctl_json
from fleetlib.hosts import container_address, get
from fleetlib.project import PROJECT_DIR

SPARE = "fo-rabbitmq-4"
GROUP, SPARE_GROUP = "rabbitmq", "rabbitmq_spare"


def replaced(old: str) -> tuple[str, ...]:
    """The cluster once the spare replaced `old`, in the order its group lists them (the seed first)."""
    return (*(broker for broker in BROKERS if broker != old), SPARE)


def edited_inventory(scenario_inventory: Path, name: str, brokers: tuple[str, ...]) -> Path:
    """A copy of the scenario's inventory (under .cache/failover/) whose cluster group lists `brokers`, in this
    order; every other broker host is in the spare group."""
    target = PROJECT_DIR / ".cache" / "failover" / f"inventory-{name}"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(scenario_inventory, target)
    path = target / "ansible_inventory.yml"
    groups = yaml.safe_load(path.read_text())
    hosts = groups["all"]["hosts"]
    others = [host for host in (*BROKERS, SPARE) if host not in brokers]
    groups[GROUP]["hosts"] = {host: hosts[host] for host in brokers}
    groups[SPARE_GROUP] = groups.get(SPARE_GROUP) or {}
    groups[SPARE_GROUP]["hosts"] = {host: hosts[host] for host in others}
    path.write_text(yaml.safe_dump(groups, sort_keys=False))
    return target


def cluster_now(haproxy: testinfra.host.Host) -> tuple[str, ...]:
    """The brokers of the cluster as it runs: the scenario's three, or the spare in place of one."""
    members = rabbitmqctl_json(get(haproxy, BROKERS[0]), "cluster_status")["disk_nodes"]  # type: ignore[index]
    return tuple(host for host in (*BROKERS, SPARE) if f"rabbit@{host}" in members)


def inventory_now(haproxy: testinfra.host.Host, scenario_inventory: Path) -> Path:
    """The inventory that describes the stack as it runs (the replaced one once the replacement ran)."""
    brokers = cluster_now(haproxy)
    return scenario_inventory if brokers == BROKERS else edited_inventory(scenario_inventory, "replaced", brokers)


def worker_connections(haproxy: testinfra.host.Host, workers: tuple[str, ...]) -> Counter[str]:
    """How many connections of these workers' programs each broker holds (each names its connection after its
    Celery node, e.g. default00@fo-worker-1; `host` is the address the broker accepted it on)."""
    brokers = {container_address(get(haproxy, broker)): broker for broker in (*BROKERS, SPARE)}
    rows = rabbitmqctl_json(get(haproxy, BROKERS[0]), "list_connections", "host", "client_properties")
    held: Counter[str] = Counter()
    for row in rows:  # type: ignore[attr-defined]
        names = [value for key, _, value in row["client_properties"] if key == "connection_name"]
        if any(name.endswith(tuple(f"@{worker}" for worker in workers)) for name in names):
            # (An IPv4 address comes as its four numbers.)
            address = ".".join(map(str, row["host"])) if isinstance(row["host"], list) else str(row["host"])
            held[brokers.get(address, address)] += 1
    return held
