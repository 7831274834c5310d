"""Whether a RabbitMQ cluster may lose one node for a while, and move to a version: the rabbitmq role's gates.

Read from two JSON answers of the node about to restart:
- `rabbitmqctl --formatter json cluster_status`: every node running, no
  resource alarm, no partition, no node already in maintenance;
- `rabbitmq-queues --formatter json check_if_node_is_quorum_critical`: the
  quorum queues (and streams) that would lose their majority without it.
Each problem is one sentence that names the node, alarm or queue, so the
refusal says what is wrong.

Which of its clients a node's drain will cut, by the names they gave their
connections (the celery_worker role's handover asks them to finish first).

And whether the installed package versions may move to `rabbitmq_version`:
RabbitMQ upgrades a running cluster by one release series at a time (3.12 to
3.13, 3.13 to 4.0, 4.0 to 4.1), with every stable feature flag enabled before
the next; it never downgrades. A longer jump is refused with the series to
pass through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NOT_UNDER_MAINTENANCE = "not under maintenance"


def rabbitmq_cluster_problems(status: Mapping[str, Any]) -> list[str]:
    """What stops a node of this cluster from being restarted now ([] when nothing does)."""
    running = set(status.get("running_nodes") or [])
    members = [*(status.get("disk_nodes") or []), *(status.get("ram_nodes") or [])]
    problems = [f"{node} is not running" for node in members if node not in running]
    for alarm in status.get("alarms") or []:
        problems.append(f"{alarm.get('node', '?')} has a {alarm.get('resource', alarm.get('type', '?'))} alarm")
    partitions = status.get("partitions") or {}
    if isinstance(partitions, Mapping):
        problems += [f"{node} is partitioned from {', '.join(peers)}" for node, peers in sorted(partitions.items())]
    else:
        problems += [f"a partition: {partition}" for partition in partitions]
    for node, state in sorted((status.get("maintenance_status") or {}).items()):
        if state != NOT_UNDER_MAINTENANCE:
            problems.append(f"{node} is {state}")
    return problems


def rabbitmq_critical_queues(answer: Mapping[str, Any]) -> list[str]:
    """The queues that would lose their majority if the node stopped now, as RabbitMQ names them."""
    if answer.get("result") == "ok":
        return []
    queues = answer.get("queues") or []
    return [queue.get("readable_name") or queue.get("name", "?") for queue in queues] or [
        str(answer.get("message") or answer)
    ]


def rabbitmq_node_in_maintenance(status: Mapping[str, Any], node: str) -> bool:
    """True while the node is drained (a restart revives it on RabbitMQ 4.0; revive says so on any version)."""
    return (status.get("maintenance_status") or {}).get(node, NOT_UNDER_MAINTENANCE) != NOT_UNDER_MAINTENANCE


# The last series of each major version: the next series is the next major's first.
_LAST_SERIES = {3: 13}
_UPSTREAM = re.compile(r"^(?:\d+:)?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?")

Series = tuple[int, int]


def _series(version: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a Debian package version such as 3.10.8-1.1 or 4.0.5-6+deb13u2."""
    found = _UPSTREAM.match(version.strip())
    if not found:
        return None
    return int(found["major"]), int(found["minor"]), int(found["patch"] or 0)


def _next(series: Series) -> Series:
    major, minor = series
    return (major + 1, 0) if _LAST_SERIES.get(major) == minor else (major, minor + 1)


def _path(start: Series, end: Series) -> list[Series]:
    path = [start]
    while path[-1] < end and len(path) < 50:
        path.append(_next(path[-1]))
    return path


def _name(series: Series) -> str:
    return f"{series[0]}.{series[1]}"


def rabbitmq_upgrade_problems(installed: Mapping[str, str], wanted: str) -> list[str]:
    """Why the nodes (host: installed package version, '' when not installed) cannot move to `wanted` in one rolling
    upgrade ([] when they can, or when `wanted` is empty: the role then never upgrades)."""
    if not wanted:
        return []
    target = _series(wanted)
    if target is None:
        return [f"rabbitmq_version '{wanted}' is not a Debian package version of RabbitMQ (e.g. 4.0.5-6)."]
    problems = []
    for host, version in sorted(installed.items()):
        current = _series(version) if version else None
        if current is None or current == target:
            continue
        if current > target:
            problems.append(
                f"{host} runs {version}, newer than rabbitmq_version '{wanted}': RabbitMQ never downgrades a node "
                "in place; set rabbitmq_version to the installed version or leave it empty."
            )
            continue
        path = _path(current[:2], target[:2])
        if len(path) > 2:
            steps = " -> ".join(_name(series) for series in path)
            problems.append(
                f"{host} runs {version}: RabbitMQ {_name(target[:2])} cannot upgrade {_name(current[:2])} in place. "
                f"Upgrade one series at a time, {steps}, each with every node on it and "
                "`rabbitmqctl enable_feature_flag all` run before the next (or move to a new cluster, blue-green)."
            )
    return problems


def rabbitmq_client_names(connections: list[Mapping[str, Any]], address: str) -> list[str]:
    """The names clients gave their connections (the connection_name property) to the node listening on
    `address`, from `rabbitmqctl --formatter json list_connections name client_properties`, which lists the
    whole cluster's: a connection's name ends with the address it reached ("peer:port -> address:port")."""
    names = set()
    for connection in connections:
        if str(connection.get("name") or "").rpartition(" -> ")[2].rpartition(":")[0] != address:
            continue
        for entry in connection.get("client_properties") or []:
            if isinstance(entry, list) and len(entry) == 3 and entry[0] == "connection_name":
                names.add(str(entry[2]))
    return sorted(names)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rabbitmq_client_names": rabbitmq_client_names,
            "rabbitmq_cluster_problems": rabbitmq_cluster_problems,
            "rabbitmq_critical_queues": rabbitmq_critical_queues,
            "rabbitmq_node_in_maintenance": rabbitmq_node_in_maintenance,
            "rabbitmq_upgrade_problems": rabbitmq_upgrade_problems,
        }
