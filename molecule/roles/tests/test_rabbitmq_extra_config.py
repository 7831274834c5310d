"""rabbitmq_extra_config (set in molecule.yml) reaches rabbitmq.conf and the running nodes; a key the role sets
itself is refused before any change, naming the variable to use."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import testinfra.host
from fleetlib.playbooks import assert_failed_before_any_change
from fleetlib.project import scenario_group_vars

testinfra_hosts = ["ansible://rabbitmq_trixie", "ansible://rabbitmq_bookworm"]

EXTRA = scenario_group_vars("roles")["all"]["rabbitmq_extra_config"]


def test_the_extra_setting_is_in_rabbitmq_conf(host: testinfra.host.Host) -> None:
    assert EXTRA == {"collect_statistics_interval": 7000}
    with host.sudo():
        lines = host.file("/etc/rabbitmq/rabbitmq.conf").content_string.splitlines()
    assert lines[-2:] == [
        "# Added by rabbitmq_extra_config: settings the role has no variable for.",
        "collect_statistics_interval = 7000",
    ]


def test_the_running_node_uses_the_extra_setting(host: testinfra.host.Host) -> None:
    # RabbitMQ's own default is 5000 ms: 7000 can only come from the extra setting.
    with host.sudo():
        value = host.check_output("rabbitmqctl eval 'application:get_env(rabbit, collect_statistics_interval).'")
    assert value == "{ok,7000}"


def test_a_key_the_role_sets_is_refused_before_any_change(
    playbook_runner_at: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    bad = {"rabbitmq_extra_config": {"collect_statistics_interval": 7000, "heartbeat": 30}}
    result = playbook_runner_at("molecule/roles/converge.yml", "--extra-vars", json.dumps(bad))
    assert_failed_before_any_change(result, "remove the key and set rabbitmq_heartbeat: 30 instead")
