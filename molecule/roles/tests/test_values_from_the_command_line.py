"""Each role's int and bool variables from the command line: strings work as YAML, bad values are refused.

The shared tests are fleetlib.command_line's; the three classes here name each role's hosts in this scenario.
The rabbitmq one adds the issue's case, `-e rabbitmq_consumer_timeout=3600000`, which puts the node's value back
when it is done (so no other module needs to run before this one).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleetlib import inputs
from fleetlib.command_line import CommandLineValues, RoleInputs
from roles_stack import CLUSTERS, PROXIES, WORKERS

# The aliases of the refusal cases are the trixie seed; the runs that converge touch one node each, not a seed
# (a seed also sets the users, which read no int or bool): strings and JSON on trixie, the issue's command on
# bookworm (RabbitMQ 3.10).
SEED = "rmq-trixie-1"
NODE = "rmq-trixie-2"
CHANGED_NODE = "rmq-bookworm-2"
CONF = "/etc/rabbitmq/rabbitmq.conf"
# Where the consumer-timeout test keeps the node's rabbitmq.conf, to put it back.
KEPT_CONF = "/root/rabbitmq.conf.before-test"


def consumer_timeout(node: str) -> tuple[str, str]:
    """A node's consumer_timeout: in its rendered rabbitmq.conf, and in the running node."""
    conf = inputs.docker_exec(node, "grep", "^consumer_timeout", CONF).strip()
    running = inputs.docker_exec(node, "rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout).")
    return conf, running.strip()


class TestRabbitmqValuesFromTheCommandLine(CommandLineValues):
    role_inputs = RoleInputs(
        role="rabbitmq",
        scenario="roles",
        playbook="playbooks/rabbitmq.yml",
        group="rabbitmq",
        target=SEED,
        role_files=[
            "/etc/rabbitmq/rabbitmq.conf",
            "/etc/rabbitmq/advanced.config",
            "/etc/rabbitmq/enabled_plugins",
            "/etc/rabbitmq/health-agent.json",
            "/etc/systemd/system/rabbitmq-health-agent.service",
        ],
        node=NODE,
        node_groups=["rabbitmq", "rabbitmq_trixie"],
        converge="molecule/roles/converge.yml",
        # Every node: the role names a cluster's nodes from every member's facts, so a run --limit'ed to one node
        # takes the others' from this cache (and the aliases take the seed's).
        fact_hosts=[node for nodes in CLUSTERS.values() for node in nodes],
        # The aliases are the play's cluster group, which the role wants odd (else it stops on that first).
        odd_cases=True,
    )

    @pytest.fixture
    def consumer_timeout_put_back(self) -> Iterator[None]:
        """After the test, the node as the converge left it, without a second rolling restart: its rabbitmq.conf
        copied back (bytes, owner and mode) and the running node's value set back (RabbitMQ reads consumer_timeout
        as each channel opens). Every file of the role is then as it was, so no converge would change the node."""
        before, files = consumer_timeout(CHANGED_NODE), inputs.checksums(CHANGED_NODE, self.role_inputs.role_files)
        value = re.fullmatch(r"\{ok,(\d+)\}", before[1])
        assert value, before
        inputs.docker_exec(CHANGED_NODE, "cp", "--preserve=all", CONF, KEPT_CONF)
        yield
        inputs.docker_exec(CHANGED_NODE, "cp", "--preserve=all", KEPT_CONF, CONF)
        inputs.docker_exec(CHANGED_NODE, "rm", KEPT_CONF)
        inputs.docker_exec(
            CHANGED_NODE, "rabbitmqctl", "eval", f"application:set_env(rabbit, consumer_timeout, {value[1]})."
        )
        assert consumer_timeout(CHANGED_NODE) == before
        assert inputs.checksums(CHANGED_NODE, self.role_inputs.role_files) == files

    # stack_whole first: its check after the test comes after the setting is put back.
    @pytest.mark.usefixtures("stack_whole", "consumer_timeout_put_back")
    def test_the_issues_consumer_timeout_from_the_command_line_is_applied(
        self, facts: Path, scenario_inventory: Path
    ) -> None:
        """`-e rabbitmq_consumer_timeout=3600000` (a string) reaches the config and the running node (a rolling
        restart of one node). The run is the converge's configure phase (the tag a configuration change is
        applied with: the setting's file, then the rolling restart), where the value is read; every phase reads
        the values as strings in test_values_on_the_command_line_work_as_yaml."""
        run = self.converge(
            CHANGED_NODE, facts, scenario_inventory, "--tags", "configure", "-e", "rabbitmq_consumer_timeout=3600000"
        )
        assert run.returncode == 0, run.changes()
        assert consumer_timeout(CHANGED_NODE) == ("consumer_timeout = 3600000", "{ok,3600000}")


def on_both_releases(role: str, group: str, hosts: list[str], role_files: list[str], **more: Any) -> RoleInputs:
    """A role on a Debian 13 and a Debian 12 host, applied by playbooks/<group>.yml: the refusal cases' aliases
    are the first host, the values-as-YAML runs converge the second."""
    return RoleInputs(
        role=role,
        scenario="roles",
        playbook=f"playbooks/{group}.yml",
        group=group,
        target=hosts[0],
        role_files=role_files,
        node=hosts[1],
        fact_hosts=hosts,
        **more,
    )


class TestHaproxyValuesFromTheCommandLine(CommandLineValues):
    role_inputs = on_both_releases(
        "haproxy", "haproxy", PROXIES, ["/etc/haproxy/haproxy.cfg"], other_groups={"rabbitmq": CLUSTERS["rabbitmq"]}
    )


class TestCeleryWorkerValuesFromTheCommandLine(CommandLineValues):
    role_inputs = on_both_releases(
        "celery_worker",
        "celery_workers",
        WORKERS,
        [
            "/etc/celery-fleet/app.json",
            "/etc/supervisor/supervisord.conf",
            "/etc/supervisor/conf.d/celery-default.conf",
            "/etc/sysctl.d/60-celery-worker.conf",
        ],
        node_groups=["celery_workers"],
        alias_groups=["celery_workers"],
        other_groups={"haproxy": PROXIES, "rabbitmq": CLUSTERS["rabbitmq"]},
    )
