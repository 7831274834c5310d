"""The rabbitmq role's cluster: membership, quorum queues, access, metrics, input checks."""

from __future__ import annotations

import contextlib
import re
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import amqp
import pytest
import testinfra.host
from fleetlib.brokers import amqp_connection, health_agent_reply, rabbitmqctl_json
from fleetlib.hosts import container_address, get
from fleetlib.playbooks import assert_failed_before_any_change
from fleetlib.project import PROJECT_DIR, role_defaults, scenario_group_vars

testinfra_hosts = ["ansible://rabbitmq_trixie", "ansible://rabbitmq_bookworm"]

SCENARIO_DIR = PROJECT_DIR / "molecule" / "roles"
SCENARIO_VARS = scenario_group_vars("roles")
APP_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_app_password"]
MONITORING_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_monitoring_password"]
ROLE_DEFAULTS = role_defaults("rabbitmq")
VHOST = "celery"

Runner = Callable[[Path, dict[str, object]], subprocess.CompletedProcess[str]]


def cluster_hosts(host: testinfra.host.Host) -> list[str]:
    """Inventory names of every node in this host's cluster, seed first."""
    variables = host.ansible.get_variables()
    group = next(name for name in variables["group_names"] if name.startswith("rabbitmq_"))
    return sorted(variables["groups"][group])


def cluster_hosts_once(host: testinfra.host.Host) -> list[str]:
    """cluster_hosts(host) on the cluster's seed; skips on its other nodes (a check run once per cluster)."""
    names = cluster_hosts(host)
    if host.backend.get_hostname() != names[0]:
        pytest.skip("an inventory check, run once per cluster")
    return names


# What several tests below read from a node, read once per node: each rabbitmqctl call starts an Erlang VM, the
# cost of these tests. (testinfra's `host` is module-scoped: the tests run host by host, so each is read just
# before that node's tests.)
# The running node's settings, as application:get_env answers ({ok,Value}), by name: one `rabbitmqctl eval`.
NODE_SETTINGS = {
    "cluster_partition_handling": "rabbit",
    "poll_interval": "aten",
    "connection_max": "rabbit",
    "channel_max": "rabbit",
}


@pytest.fixture(scope="module")
def node_settings(host: testinfra.host.Host) -> dict[str, str]:
    """NODE_SETTINGS as the running node answers them ({ok,Value}, or undefined)."""
    calls = ", ".join(f"application:get_env({app}, {name})" for name, app in NODE_SETTINGS.items())
    with host.sudo():
        answer = host.check_output(f"rabbitmqctl eval '[{calls}].'")
    values = re.findall(r"\{ok,[^{}]*\}|undefined", answer)
    assert len(values) == len(NODE_SETTINGS), answer
    return dict(zip(NODE_SETTINGS, values, strict=True))


@pytest.fixture(scope="module")
def node_status(host: testinfra.host.Host) -> dict[str, Any]:
    """`rabbitmqctl status`: the node's version, memory and disk limits, descriptors."""
    return cast(dict[str, Any], rabbitmqctl_json(host, "status"))


@pytest.fixture(scope="module")
def users(host: testinfra.host.Host) -> dict[str, list[str]]:
    """Each user of the cluster and its tags, as the node lists them."""
    return {user["user"]: user["tags"] for user in cast(list[dict[str, Any]], rabbitmqctl_json(host, "list_users"))}


def test_every_node_sees_three_running_nodes(host: testinfra.host.Host) -> None:
    status = rabbitmqctl_json(host, "cluster_status")
    expected = {f"rabbit@{name}" for name in cluster_hosts(host)}
    assert len(expected) == 3
    assert set(status["running_nodes"]) == expected
    assert set(status["disk_nodes"]) == expected


def test_partition_handling_is_the_roles(node_settings: dict[str, str]) -> None:
    expected = role_defaults("rabbitmq")["rabbitmq_cluster_partition_handling"]
    assert node_settings["cluster_partition_handling"] == f"{{ok,{expected}}}"


def test_the_health_agent_says_the_node_can_serve(host: testinfra.host.Host) -> None:
    # On the node's own address: the agent listens there only (rabbitmq_listen_address).
    assert health_agent_reply(host, container_address(host)) == "up"


def test_a_new_40_cluster_runs_on_khepri_and_310_stays_on_mnesia(
    host: testinfra.host.Host, node_status: dict[str, Any]
) -> None:
    flags = {flag["name"]: flag["state"] for flag in rabbitmqctl_json(host, "list_feature_flags", "name", "state")}
    if node_status["rabbitmq_version"].startswith("3."):
        assert "khepri_db" not in flags
    else:
        assert flags["khepri_db"] == "enabled"


def test_the_failure_detector_polls_as_the_role_says(node_settings: dict[str, str]) -> None:
    expected = role_defaults("rabbitmq")["rabbitmq_failure_detector_poll_interval"]
    assert node_settings["poll_interval"] == f"{{ok,{expected}}}"


def test_quorum_queue_is_replicated_and_delivers_across_nodes(host: testinfra.host.Host) -> None:
    names = cluster_hosts(host)
    if host.backend.get_hostname() != names[0]:
        pytest.skip("a cluster-wide check, run once per cluster from its seed")
    publish_node, consume_node = container_address(host), container_address(get(host, names[2]))
    queue, body = f"replication-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex

    # Declared with no x-queue-type: the vhost's default queue type decides. The app's user may not declare
    # (test_app_user_may_publish_and_consume_but_not_declare): it may, for this declaration only.
    with (
        configure_granted(host),
        amqp_connection(publish_node, "celery", APP_PASSWORD, VHOST, confirm_publish=True) as connection,
    ):
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.basic_publish(amqp.Message(body, delivery_mode=2), exchange="", routing_key=queue)

    queues = rabbitmqctl_json(host, "list_queues", "--vhost", VHOST, "name", "type", "members")
    declared = next(item for item in queues if item["name"] == queue)
    assert declared["type"] == "quorum"
    assert sorted(declared["members"]) == sorted(f"rabbit@{name}" for name in names)

    with amqp_connection(consume_node, "celery", APP_PASSWORD, VHOST) as connection:
        channel = connection.channel()
        message = channel.basic_get(queue, no_ack=True)
        assert message is not None
        assert message.body == body
    with configure_granted(host), amqp_connection(consume_node, "celery", APP_PASSWORD, VHOST) as connection:
        connection.channel().queue_delete(queue)


@contextlib.contextmanager
def configure_granted(broker: testinfra.host.Host) -> Iterator[None]:
    """While inside, the app's user may configure its vhost; then it has the role's permissions again."""
    with broker.sudo():
        broker.check_output(f"rabbitmqctl set_permissions --vhost {VHOST} celery '.*' '.*' '.*'")
    try:
        yield
    finally:
        with broker.sudo():
            broker.check_output(f"rabbitmqctl set_permissions --vhost {VHOST} celery '^$' '.*' '.*'")


def test_guest_is_removed(host: testinfra.host.Host, users: dict[str, list[str]]) -> None:
    assert "guest" not in users
    with pytest.raises(amqp.exceptions.AccessRefused):
        amqp_connection(container_address(host), "guest", "guest", "/")


def test_app_user_may_publish_and_consume_but_not_declare(host: testinfra.host.Host) -> None:
    address = container_address(host)
    with amqp_connection(address, "celery", APP_PASSWORD, VHOST, confirm_publish=True) as connection:
        connection.channel().basic_publish(amqp.Message("allowed"), exchange="", routing_key="nowhere")
    # Nor delete: the deployment's queues are safe from the app (rabbitmq_app_declares_topology is false).
    with (
        amqp_connection(address, "celery", APP_PASSWORD, VHOST) as connection,
        pytest.raises(amqp.exceptions.AccessRefused),
    ):
        connection.channel().queue_declare("anything", durable=True, auto_delete=False)


def test_monitoring_user_can_neither_publish_nor_consume(
    host: testinfra.host.Host, users: dict[str, list[str]]
) -> None:
    assert "monitoring" in users["monitoring"]
    address = container_address(host)
    # Publisher confirms make the broker's refusal arrive as an exception here.
    with (
        amqp_connection(address, "monitoring", MONITORING_PASSWORD, VHOST, confirm_publish=True) as connection,
        pytest.raises(amqp.exceptions.AccessRefused),
    ):
        connection.channel().basic_publish(amqp.Message("nope"), exchange="", routing_key="anything")
    # Reading is consuming: RabbitMQ checks the read permission before it looks the queue up.
    with (
        amqp_connection(address, "monitoring", MONITORING_PASSWORD, VHOST) as connection,
        pytest.raises(amqp.exceptions.AccessRefused),
    ):
        connection.channel().basic_get(queue="anything")


def test_prometheus_metrics_are_served(host: testinfra.host.Host) -> None:
    url = f"http://{container_address(host)}:15692/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    assert response.status == 200
    assert "rabbitmq_identity_info" in body or "rabbitmq_build_info" in body


def inventory_for(names: list[str], **group_vars: object) -> dict[str, object]:
    """A throw-away inventory over existing containers, as one cluster group: `rabbitmq`, the role's default and
    a group the converge's play targets."""
    return {
        "all": {
            "children": {
                "rabbitmq": {
                    "hosts": {name: {} for name in names},
                    "vars": {
                        "ansible_connection": "community.docker.docker",
                        **group_vars,
                    },
                }
            }
        }
    }


def test_two_node_inventory_fails_early_with_reason(host: testinfra.host.Host, playbook_runner: Runner) -> None:
    names = cluster_hosts_once(host)
    inventory = inventory_for(names[:2], rabbitmq_app_password="x", rabbitmq_monitoring_password="y")
    result = playbook_runner(SCENARIO_DIR / "converge.yml", inventory)
    assert_failed_before_any_change(result, "Quorum queues need an odd number of at least 3 nodes")


def test_missing_password_fails_early_with_reason(host: testinfra.host.Host, playbook_runner: Runner) -> None:
    names = cluster_hosts_once(host)
    secret = f"never-print-{uuid.uuid4().hex}"
    result = playbook_runner(SCENARIO_DIR / "converge.yml", inventory_for(names, rabbitmq_monitoring_password=secret))
    assert_failed_before_any_change(result, "rabbitmq_app_password and rabbitmq_monitoring_password must both be set")
    assert secret not in result.stdout + result.stderr


def test_an_agent_faster_than_the_new_leaders_is_refused(host: testinfra.host.Host, playbook_runner: Runner) -> None:
    names = cluster_hosts_once(host)
    # One round of 1 s answers down after 1 s; new leaders may need 2 x 500 + 2000 ms.
    inventory = inventory_for(names, rabbitmq_app_password="x", rabbitmq_monitoring_password="y",
                              rabbitmq_health_agent_fall="1")  # fmt: skip
    result = playbook_runner(SCENARIO_DIR / "converge.yml", inventory)
    assert_failed_before_any_change(result, "The health agent can answer down 1000 ms after a cut")
    assert "Raise rabbitmq_health_agent_fall" in " ".join(result.stdout.split())


def test_an_upgrade_rabbitmq_does_not_support_is_refused(host: testinfra.host.Host, playbook_runner: Runner) -> None:
    """Debian 12's 3.10 cannot become Debian 13's 4.0 in place, nor the other way: refused, naming the way."""
    names = cluster_hosts_once(host)
    other = "rmq-trixie-1" if names[0].startswith("rmq-bookworm") else "rmq-bookworm-1"
    version = get(host, other).check_output("dpkg-query --show --showformat '${Version}' rabbitmq-server")
    inventory = inventory_for(names, rabbitmq_app_password="x", rabbitmq_monitoring_password="y",
                              rabbitmq_version=version)  # fmt: skip
    result = playbook_runner(SCENARIO_DIR / "converge.yml", inventory)
    way = "3.10 -> 3.11 -> 3.12 -> 3.13 -> 4.0" if names[0].startswith("rmq-bookworm") else "never downgrades"
    assert_failed_before_any_change(result, way)


def test_the_checklists_limits_are_in_effect(
    host: testinfra.host.Host, node_status: dict[str, Any], node_settings: dict[str, str]
) -> None:
    """Each limit variable reaches the running node: watermarks and descriptors in its status, the connection and
    channel maximums in its environment, the descriptor limit on its process."""
    status = node_status
    relative = ROLE_DEFAULTS["rabbitmq_memory_high_watermark_percent"] / 100
    assert status["vm_memory_high_watermark_setting"] == {"relative": relative}
    memory_total = status["vm_memory_high_watermark_limit"] / status["vm_memory_high_watermark_setting"]["relative"]
    # disk_free_limit.relative is a share of the same total memory.
    expected_disk = memory_total * ROLE_DEFAULTS["rabbitmq_disk_free_limit_percent_of_ram"] / 100
    assert abs(status["disk_free_limit"] - expected_disk) < 0.01 * expected_disk, status["disk_free_limit"]
    with host.sudo():
        beam = host.check_output("pgrep -o -f beam.smp")
        descriptors = host.check_output(f"grep 'Max open files' /proc/{beam}/limits").split()[3]
        # systemd cannot give a unit more than its own hard limit, which a container inherits from the Docker
        # engine (20000 on the test machines; raising it is not permitted there).
        ceiling = host.check_output("grep 'Max open files' /proc/1/limits").split()[4]
    connections, channels = ROLE_DEFAULTS["rabbitmq_connection_max"], ROLE_DEFAULTS["rabbitmq_channel_max"]
    limits = (node_settings["connection_max"], node_settings["channel_max"])
    assert limits == (f"{{ok,{connections}}}", f"{{ok,{channels}}}")
    assert int(descriptors) == min(ROLE_DEFAULTS["rabbitmq_nofile"], int(ceiling))
