"""The rabbitmq role's gates before each restart: what stops a node from being restarted, in words that name it."""

from __future__ import annotations

from typing import Any

from rabbitmq_cluster import (
    rabbitmq_client_names,
    rabbitmq_cluster_problems,
    rabbitmq_critical_queues,
    rabbitmq_node_in_maintenance,
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
