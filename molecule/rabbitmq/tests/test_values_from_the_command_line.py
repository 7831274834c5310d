"""The rabbitmq role's int and bool variables from the command line: strings work as YAML, bad values are refused.

The shared tests are fleetlib.command_line's; this names the scenario's hosts and adds the issue's case,
`-e rabbitmq_consumer_timeout=3600000`, which puts the node's value back when it is done (so no other module
needs to run before this one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fleetlib import inputs
from fleetlib.command_line import CommandLineValues, RoleInputs

CLUSTERS = {
    "rabbitmq_trixie": ["rmq-trixie-1", "rmq-trixie-2", "rmq-trixie-3"],
    "rabbitmq_bookworm": ["rmq-bookworm-1", "rmq-bookworm-2", "rmq-bookworm-3"],
}
# The aliases of the refusal cases are the trixie seed; the runs that converge touch one node each, not a seed
# (a seed also sets the users, which read no int or bool): strings and JSON on trixie, the issue's command on
# bookworm (RabbitMQ 3.10).
SEED = "rmq-trixie-1"
NODE = "rmq-trixie-2"
CHANGED_NODE = "rmq-bookworm-2"


def consumer_timeout(node: str) -> tuple[str, str]:
    """A node's consumer_timeout: in its rendered rabbitmq.conf, and in the running node."""
    conf = inputs.docker_exec(node, "grep", "^consumer_timeout", "/etc/rabbitmq/rabbitmq.conf").strip()
    running = inputs.docker_exec(node, "rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout).")
    return conf, running.strip()


class TestRabbitmqValuesFromTheCommandLine(CommandLineValues):
    role_inputs = RoleInputs(
        role="rabbitmq",
        scenario="rabbitmq",
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
        node_groups=["rabbitmq_trixie"],
        converge="molecule/rabbitmq/converge.yml",
        # Every node: the role names a cluster's nodes from every member's facts, so a run --limit'ed to one node
        # takes the others' from this cache (and the aliases take the seed's).
        fact_hosts=[node for nodes in CLUSTERS.values() for node in nodes],
        # The aliases are the play's cluster group, which the role wants odd (else it stops on that first).
        odd_cases=True,
    )

    @pytest.fixture
    def consumer_timeout_put_back(self, facts: Path, scenario_inventory: Path) -> Iterator[None]:
        """After the test, the scenario's converge again (no -e): the node's setting as it was, at the cost of a
        second rolling restart of that one node."""
        before = consumer_timeout(CHANGED_NODE)
        yield
        run = self.converge(CHANGED_NODE, facts, scenario_inventory)
        assert run.returncode == 0, run.changes()
        assert consumer_timeout(CHANGED_NODE) == before

    @pytest.mark.usefixtures("consumer_timeout_put_back")
    def test_the_issues_consumer_timeout_from_the_command_line_is_applied(
        self, facts: Path, scenario_inventory: Path
    ) -> None:
        """`-e rabbitmq_consumer_timeout=3600000` (a string) reaches the config and the running node (a rolling
        restart of one node)."""
        run = self.converge(CHANGED_NODE, facts, scenario_inventory, "-e", "rabbitmq_consumer_timeout=3600000")
        assert run.returncode == 0, run.changes()
        assert consumer_timeout(CHANGED_NODE) == ("consumer_timeout = 3600000", "{ok,3600000}")
