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

And how one node is replaced by another (playbooks/rabbitmq-replace-node.yml):
from every member's own `cluster_status`, the new node, or why not now.
"""

from __future__ import annotations

import json
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


def _cluster_answers(answers: Mapping[str, Mapping[str, Any]], old: str) -> dict[str, Mapping[str, Any]]:
    """The cluster_status of each host that answered and runs a node of the cluster: one that did not answer (rc
    not 0: down, or RabbitMQ not installed yet) is left out, and so is a standalone node (a new host's)."""
    statuses = {}
    for host, answer in answers.items():
        status = json.loads(answer.get("stdout") or "{}") if answer.get("rc") == 0 else {}
        if len(status.get("disk_nodes") or []) > 1 or old in (status.get("disk_nodes") or []):
            statuses[host] = status
    return statuses


def rabbitmq_replacement(
    answers: Mapping[str, Mapping[str, Any]], target: list[str], old: str, nodes: Mapping[str, str]
) -> dict[str, Any]:
    """How the cluster becomes the inventory group `target` (hosts, in order) by replacing host `old` with one new
    host, from each host's `rabbitmqctl --formatter json cluster_status` (host: the registered result); `nodes`
    names each host's node: {'new': the host to add ('' if none), 'done': already replaced, 'problems': why not}."""
    statuses = _cluster_answers(answers, nodes[old])
    members = {node for status in statuses.values() for node in status.get("disk_nodes") or []}
    if nodes[old] not in members and {nodes[host] for host in target} <= members:
        return {"new": "", "done": True, "problems": []}
    problems = []
    if old in target:
        problems.append(f"{old} is still in the group: it lists the brokers that stay and the new one")
    if nodes[old] not in members:
        problems.append(f"{old} runs no member of the cluster ({', '.join(sorted(members)) or 'no member answered'})")
    added = [host for host in target if nodes[host] not in members]
    if len(added) != 1:
        problems.append(
            f"the group lists {len(added)} host(s) whose node is not a member ({', '.join(added) or 'none'}); "
            "a replacement adds exactly one"
        )
    dropped = sorted(members - {nodes[host] for host in target} - {nodes[old]})
    if dropped:
        problems.append(f"members {', '.join(dropped)} are not in the group: replace one node at a time")
    if len(target) < 3 or len(target) % 2 == 0:
        size = "an even-sized" if len(target) % 2 == 0 else "a"
        problems.append(
            f"it would leave {size} cluster of {len(target)} node(s): quorum queues need an odd number of at least 3"
        )
    if target and target[0] in added:
        problems.append(f"the group's first host ({target[0]}) seeds the join, so it must be a member already")
    for status in statuses.values():
        problems += [problem for problem in rabbitmq_cluster_problems(status) if problem not in problems]
    # Non-voting new members and the check that they caught up came with 3.13.
    versions = {node: _series(str(version.get("rabbitmq_version", ""))) for status in statuses.values()
                for node, version in (status.get("versions") or {}).items()}  # fmt: skip
    too_old = sorted(node for node, series in versions.items() if series is not None and series[:2] < (3, 13))
    if too_old:
        problems.append(f"{', '.join(too_old)} run(s) RabbitMQ older than 3.13, which cannot add a member that "
                        "catches up before it votes: upgrade first, or replace the node by hand")  # fmt: skip
    # A Khepri cluster lists no partitions: members that see different running nodes are split.
    views = {nodes[host]: sorted(status.get("running_nodes") or []) for host, status in statuses.items()}
    first = min(views, default="")
    for node, view in sorted(views.items()):
        if view != views[first]:
            problems.append(f"{node} sees {', '.join(view)} running, but {first} sees {', '.join(views[first])}")
    return {"new": added[0] if len(added) == 1 else "", "done": False, "problems": problems}


def rabbitmq_stranded_queues(queues_by_vhost: Mapping[str, list[Mapping[str, Any]]], node: str) -> list[str]:
    """The durable classic queues that live on `node` (from `list_queues name type durable leader` per vhost):
    forgetting the node deletes them, messages and all, since a classic queue has no other replica."""
    return [
        f"queue '{queue.get('name')}' in vhost '{vhost}' is a durable classic queue on {node}, which forgetting "
        "the node deletes (make it a quorum queue, or move its messages, first)"
        for vhost, queues in sorted(queues_by_vhost.items())
        for queue in queues
        if queue.get("type") == "classic" and queue.get("durable") and queue.get("leader") == node
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "rabbitmq_client_names": rabbitmq_client_names,
            "rabbitmq_cluster_problems": rabbitmq_cluster_problems,
            "rabbitmq_critical_queues": rabbitmq_critical_queues,
            "rabbitmq_node_in_maintenance": rabbitmq_node_in_maintenance,
            "rabbitmq_replacement": rabbitmq_replacement,
            "rabbitmq_stranded_queues": rabbitmq_stranded_queues,
            "rabbitmq_upgrade_problems": rabbitmq_upgrade_problems,
        }
