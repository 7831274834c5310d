"""The rabbitmq role's gates before each restart: what stops a node from being restarted, in words that name it."""

from __future__ import annotations

import json
from typing import Any

from rabbitmq_cluster import (
    rabbitmq_client_names,
    rabbitmq_cluster_problems,
    rabbitmq_critical_queues,
    rabbitmq_node_in_maintenance,
    rabbitmq_replacement,
    rabbitmq_stranded_queues,
    rabbitmq_upgrade_problems,
)

NODES = ["rabbit@rmq-1", "rabbit@rmq-2", "rabbit@rmq-3"]


def status(**changes: Any) -> dict[str, Any]:
    """A 4.0.5 node's `rabbitmqctl --formatter json cluster_status` (the keys the gates read), healthy by default."""
    healthy = {"disk_nodes": NODES, "ram_nodes": [], "running_nodes": NODES, "alarms": [], "partitions": {},
               "maintenance_status": dict.fromkeys(NODES, "not under maintenance")}  # fmt: skip
    return {**healthy, **changes}


def test_a_healthy_cluster_has_no_problem() -> None:
    assert rabbitmq_cluster_problems(status()) == []


def test_a_node_down_is_named() -> None:
    assert rabbitmq_cluster_problems(status(running_nodes=NODES[:2])) == ["rabbit@rmq-3 is not running"]


def test_an_alarm_is_named_with_its_node_and_resource() -> None:
    alarms = [{"node": "rabbit@rmq-2", "type": "resource_limit", "resource": "disk"}]
    assert rabbitmq_cluster_problems(status(alarms=alarms)) == ["rabbit@rmq-2 has a disk alarm"]


def test_a_partition_is_named_from_either_format() -> None:
    assert rabbitmq_cluster_problems(status(partitions={"rabbit@rmq-1": ["rabbit@rmq-3"]})) == [
        "rabbit@rmq-1 is partitioned from rabbit@rmq-3"
    ]
    assert rabbitmq_cluster_problems(status(partitions=[["rabbit@rmq-1", ["rabbit@rmq-3"]]])) == [
        "a partition: ['rabbit@rmq-1', ['rabbit@rmq-3']]"
    ]


def test_a_node_left_in_maintenance_is_named() -> None:
    drained = status(maintenance_status={**dict.fromkeys(NODES, "not under maintenance"),
                                         "rabbit@rmq-2": "under maintenance"})  # fmt: skip
    assert rabbitmq_cluster_problems(drained) == ["rabbit@rmq-2 is under maintenance"]
    assert rabbitmq_node_in_maintenance(drained, "rabbit@rmq-2")
    assert not rabbitmq_node_in_maintenance(drained, "rabbit@rmq-1")
    # 3.x without the key: not in maintenance.
    assert not rabbitmq_node_in_maintenance({}, "rabbit@rmq-1")


def test_critical_queues_are_named_as_rabbitmq_names_them() -> None:
    # A 4.0.5 node's answer on stderr, exit code 69, for a quorum queue with its only member there.
    answer = {"message": "Node rabbit@rmq-1 reported local queues with minimum online quorum", "result": "error",
              "queues": [{"name": "one", "readable_name": "queue 'one' in vhost 'celery'",
                          "type": "rabbit_quorum_queue", "virtual_host": "celery"}]}  # fmt: skip
    assert rabbitmq_critical_queues(answer) == ["queue 'one' in vhost 'celery'"]
    assert rabbitmq_critical_queues({"result": "ok"}) == []
    # An error without a queue list still says something.
    assert rabbitmq_critical_queues({"result": "error", "message": "timed out"}) == ["timed out"]


def test_no_version_asked_means_no_upgrade() -> None:
    assert rabbitmq_upgrade_problems({"rmq-1": "3.10.8-1.1"}, "") == []


def test_the_same_or_the_next_series_is_one_rolling_upgrade() -> None:
    assert rabbitmq_upgrade_problems({"rmq-1": "4.0.5-6+deb13u2", "rmq-2": ""}, "4.0.5-6+deb13u2") == []
    assert rabbitmq_upgrade_problems({"rmq-1": "4.0.4-1"}, "4.0.5-6+deb13u2") == []
    assert rabbitmq_upgrade_problems({"rmq-1": "3.13.7-1"}, "4.0.5-6+deb13u2") == []
    assert rabbitmq_upgrade_problems({"rmq-1": "3.12.14-1"}, "3.13.7-1") == []
    assert rabbitmq_upgrade_problems({"rmq-1": "1:4.0.5-1"}, "4.1.0-1") == []


def test_a_longer_jump_is_refused_naming_the_series_between() -> None:
    # Debian 12's 3.10.8 to Debian 13's 4.0.5, the only two versions on these machines.
    (problem,) = rabbitmq_upgrade_problems({"rmq-1": "3.10.8-1.1", "rmq-2": "4.0.5-6+deb13u2"}, "4.0.5-6+deb13u2")
    assert problem.startswith("rmq-1 runs 3.10.8-1.1: RabbitMQ 4.0 cannot upgrade 3.10 in place.")
    assert "3.10 -> 3.11 -> 3.12 -> 3.13 -> 4.0" in problem
    (problem,) = rabbitmq_upgrade_problems({"rmq-1": "4.0.5-1"}, "4.2.0-1")
    assert "4.0 -> 4.1 -> 4.2" in problem


def test_a_downgrade_and_a_version_that_is_not_one_are_refused() -> None:
    (problem,) = rabbitmq_upgrade_problems({"rmq-1": "4.0.5-6+deb13u2"}, "3.10.8-1.1")
    assert "never downgrades" in problem
    assert rabbitmq_upgrade_problems({"rmq-1": "4.0.5-1"}, "latest") == [
        "rabbitmq_version 'latest' is not a Debian package version of RabbitMQ (e.g. 4.0.5-6)."
    ]


def connection(name: str, *properties: list[Any]) -> dict[str, Any]:
    """A row of `rabbitmqctl --formatter json list_connections name client_properties`."""
    return {"name": name, "client_properties": [["product", "longstr", "py-amqp"], *properties]}


def named(value: str) -> list[Any]:
    return ["connection_name", "longstr", value]


def test_client_names_are_those_of_a_real_row() -> None:
    row = {
        "name": "10.213.2.21:38224 -> 10.213.2.11:5671",
        "client_properties": [
            ["product", "longstr", "py-amqp"],
            ["connection_name", "longstr", "default00@fo-worker-1"],
            ["capabilities", "table", [["consumer_cancel_notify", "bool", True]]],
        ],
    }
    assert rabbitmq_client_names([row], "10.213.2.11") == ["default00@fo-worker-1"]
    assert rabbitmq_client_names([row], "10.213.2.12") == []


def test_client_names_leave_out_the_other_nodes_connections() -> None:
    rows = [
        connection("10.213.2.21:38224 -> 10.213.2.11:5671", named("default00@fo-worker-1")),
        connection("10.213.2.22:40100 -> 10.213.2.12:5671", named("default00@fo-worker-2")),
        # An address that only begins like this node's.
        connection("10.213.2.23:40100 -> 10.213.2.111:5671", named("default00@fo-worker-3")),
    ]
    assert rabbitmq_client_names(rows, "10.213.2.11") == ["default00@fo-worker-1"]
    assert rabbitmq_client_names(rows, "10.213.2.12") == ["default00@fo-worker-2"]
    assert rabbitmq_client_names([], "10.213.2.11") == []


def test_client_names_leave_out_connections_without_one() -> None:
    rows = [
        connection("10.213.2.21:38224 -> 10.213.2.11:5671"),
        {"name": "10.213.2.22:38224 -> 10.213.2.11:5671", "client_properties": []},
        {"name": "10.213.2.23:38224 -> 10.213.2.11:5671"},
        connection("10.213.2.24:38224 -> 10.213.2.11:5671", named("default00@fo-worker-4")),
    ]
    assert rabbitmq_client_names(rows, "10.213.2.11") == ["default00@fo-worker-4"]


def test_client_names_are_sorted_once_each() -> None:
    # A worker's consumer, event and producer connections all carry its node name.
    rows = [
        connection("10.213.2.22:40001 -> 10.213.2.11:5671", named("default00@fo-worker-2")),
        connection("10.213.2.21:40002 -> 10.213.2.11:5671", named("default00@fo-worker-1")),
        connection("10.213.2.22:40003 -> 10.213.2.11:5671", named("default00@fo-worker-2")),
        connection("10.213.2.21:40004 -> 10.213.2.11:5671", named("default01@fo-worker-1")),
    ]
    assert rabbitmq_client_names(rows, "10.213.2.11") == [
        "default00@fo-worker-1",
        "default00@fo-worker-2",
        "default01@fo-worker-1",
    ]


# Replacing rmq-3 with rmq-4: each host's node, and each host's answer as the playbook registers it.
HOSTS = {f"rmq-{n}": f"rabbit@rmq-{n}" for n in (1, 2, 3, 4)}
TARGET = ["rmq-1", "rmq-2", "rmq-4"]


def answers(**statuses: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Every host's registered cluster_status: rmq-1..3 healthy members and rmq-4 not installed, unless given
    (None: no answer)."""
    given = {"rmq-1": status(), "rmq-2": status(), "rmq-3": status(), "rmq-4": None, **statuses}
    return {host: {"rc": 0, "stdout": json.dumps(answer)} if answer is not None else {"rc": 2, "stdout": ""}
            for host, answer in given.items()}  # fmt: skip


def test_a_replacement_names_the_new_host() -> None:
    assert rabbitmq_replacement(answers(), TARGET, "rmq-3", HOSTS) == {"new": "rmq-4", "done": False, "problems": []}


def test_a_standalone_new_node_is_not_taken_for_a_member() -> None:
    standalone = status(disk_nodes=["rabbit@rmq-4"], running_nodes=["rabbit@rmq-4"])
    assert rabbitmq_replacement(answers(**{"rmq-4": standalone}), TARGET, "rmq-3", HOSTS)["problems"] == []


def test_a_replacement_already_done_changes_nothing() -> None:
    nodes = [HOSTS[host] for host in TARGET]
    done = status(disk_nodes=nodes, running_nodes=nodes)
    found = answers(**{"rmq-1": done, "rmq-2": done, "rmq-4": done, "rmq-3": None})
    assert rabbitmq_replacement(found, TARGET, "rmq-3", HOSTS) == {"new": "", "done": True, "problems": []}


def test_an_even_sized_result_is_refused_with_the_old_host_still_in_the_group() -> None:
    problems = rabbitmq_replacement(answers(), [*TARGET, "rmq-3"], "rmq-3", HOSTS)["problems"]
    assert problems == [
        "rmq-3 is still in the group: it lists the brokers that stay and the new one",
        "it would leave an even-sized cluster of 4 node(s): quorum queues need an odd number of at least 3",
    ]


def test_a_member_dropped_from_the_group_is_refused() -> None:
    hosts = HOSTS | {"rmq-5": "rabbit@rmq-5"}
    problems = rabbitmq_replacement(answers(), ["rmq-1", "rmq-4", "rmq-5"], "rmq-3", hosts)["problems"]
    assert "members rabbit@rmq-2 are not in the group: replace one node at a time" in problems
    assert "the group lists 2 host(s) whose node is not a member (rmq-4, rmq-5); a replacement adds exactly one" in (
        problems
    )


def test_a_new_host_listed_first_is_refused() -> None:
    problems = rabbitmq_replacement(answers(), ["rmq-4", "rmq-1", "rmq-2"], "rmq-3", HOSTS)["problems"]
    assert problems == ["the group's first host (rmq-4) seeds the join, so it must be a member already"]


def test_a_node_down_and_an_alarm_are_named_once() -> None:
    down = status(running_nodes=NODES[:2], alarms=[{"node": "rabbit@rmq-2", "resource": "disk"}])
    problems = rabbitmq_replacement(answers(**{"rmq-1": down, "rmq-2": down, "rmq-3": None}), TARGET, "rmq-3", HOSTS)
    assert problems["problems"] == ["rabbit@rmq-3 is not running", "rabbit@rmq-2 has a disk alarm"]


def test_members_that_see_different_running_nodes_are_a_split() -> None:
    one_side, other_side = status(running_nodes=NODES[:2]), status(running_nodes=NODES[2:])
    found = answers(**{"rmq-1": one_side, "rmq-2": one_side, "rmq-3": other_side})
    problems = rabbitmq_replacement(found, TARGET, "rmq-3", HOSTS)["problems"]
    assert "rabbit@rmq-3 sees rabbit@rmq-3 running, but rabbit@rmq-1 sees rabbit@rmq-1, rabbit@rmq-2" in problems


def test_an_old_host_that_runs_no_member_is_refused() -> None:
    problems = rabbitmq_replacement(answers(), TARGET, "rmq-5", HOSTS | {"rmq-5": "rabbit@rmq-5"})["problems"]
    assert problems[0] == "rmq-5 runs no member of the cluster (rabbit@rmq-1, rabbit@rmq-2, rabbit@rmq-3)"


def test_a_cluster_older_than_3_13_is_refused() -> None:
    old = status(versions={node: {"rabbitmq_version": "3.10.8"} for node in NODES})
    problems = rabbitmq_replacement(answers(**{"rmq-1": old}), TARGET, "rmq-3", HOSTS)["problems"]
    assert problems == [
        "rabbit@rmq-1, rabbit@rmq-2, rabbit@rmq-3 run(s) RabbitMQ older than 3.13, which cannot add a member that "
        "catches up before it votes: upgrade first, or replace the node by hand"
    ]


def test_only_durable_classic_queues_on_the_node_are_stranded() -> None:
    queues = {"celery": [
        {"name": "tasks", "type": "quorum", "durable": True, "leader": "rabbit@rmq-3"},
        {"name": "reply", "type": "classic", "durable": False, "leader": "rabbit@rmq-3"},
        {"name": "audit", "type": "classic", "durable": True, "leader": "rabbit@rmq-3"},
        {"name": "other", "type": "classic", "durable": True, "leader": "rabbit@rmq-1"},
    ]}  # fmt: skip
    assert rabbitmq_stranded_queues(queues, "rabbit@rmq-3") == [
        "queue 'audit' in vhost 'celery' is a durable classic queue on rabbit@rmq-3, which forgetting the node "
        "deletes (make it a quorum queue, or move its messages, first)"
    ]
