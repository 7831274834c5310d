"""The rabbitmq role's int and bool variables from the command line: strings work as YAML, bad values are refused.

Runs after test_rabbitmq.py (file order): the last test restarts one node twice.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import scenario_group_vars
from fleetlib import inputs

INVENTORY = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "inventory")).parent
SCENARIO_VARS = scenario_group_vars("rabbitmq")
CLUSTERS = {
    "rabbitmq_trixie": ["rmq-trixie-1", "rmq-trixie-2", "rmq-trixie-3"],
    "rabbitmq_bookworm": ["rmq-bookworm-1", "rmq-bookworm-2", "rmq-bookworm-3"],
}
# The aliases of the refusal cases are the trixie seed; the runs that converge touch one node each, not a seed
# (a seed also sets the users, which read no int or bool): strings and JSON on trixie, the issue's command on
# bookworm (RabbitMQ 3.10), last.
SEED = "rmq-trixie-1"
NODE = "rmq-trixie-2"
CHANGED_NODE = "rmq-bookworm-2"
ROLE_FILES = [
    "/etc/rabbitmq/rabbitmq.conf",
    "/etc/rabbitmq/advanced.config",
    "/etc/rabbitmq/enabled_plugins",
    "/etc/rabbitmq/health-agent.json",
    "/etc/systemd/system/rabbitmq-health-agent.service",
]


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every node's facts, gathered once: the role names a cluster's nodes from every member's facts, so a run
    --limit'ed to one node takes the others' from this cache (and the aliases below take the seed's)."""
    cache = tmp_path_factory.mktemp("facts")
    inputs.fact_cache(INVENTORY, [node for nodes in CLUSTERS.values() for node in nodes], cache)
    return cache


def test_every_bad_int_or_bool_value_is_refused_before_any_change(facts: Path, tmp_path: Path) -> None:
    found = inputs.cases("rabbitmq")
    # The aliases are the play's cluster group, which the role wants odd (else it stops on that first).
    if len(found) % 2 == 0:
        found.append(replace(found[0], alias=f"{found[0].alias}-again"))
    before = inputs.checksums(SEED, ROLE_FILES)
    results = inputs.run_cases(
        "rabbitmq",
        found,
        playbook_path="playbooks/rabbitmq.yml",
        group="rabbitmq",
        target=SEED,
        host_vars={"ansible_connection": "community.docker.docker", **SCENARIO_VARS["all"]},
        groups={},
        cache=facts,
        workdir=tmp_path,
    )
    assert inputs.unrefused(found, results) == []
    assert inputs.checksums(SEED, ROLE_FILES) == before


def converge(node: str, facts: Path, *args: str) -> inputs.Run:
    """The scenario's converge on one node (its peers' facts from the cache), with these arguments."""
    return inputs.playbook("molecule/rabbitmq/converge.yml", INVENTORY, facts, "--limit", node, *args)


@pytest.mark.parametrize("form", [inputs.as_strings, inputs.as_json], ids=["strings", "json"])
def test_values_on_the_command_line_work_as_yaml(facts: Path, form: inputs.Form) -> None:
    """Every int and bool variable at its converged value, as `-e name=value` strings or as JSON: no change."""
    values = inputs.effective_values("rabbitmq", "rabbitmq", ["rabbitmq_trixie"])
    run = converge(NODE, facts, *form(values))
    assert (run.returncode, run.changed()) == (0, {NODE: 0}), run.changes()


def consumer_timeout(node: str) -> tuple[str, str]:
    """A node's consumer_timeout: in its rendered rabbitmq.conf, and in the running node."""
    conf = subprocess.run(
        ["docker", "exec", node, "grep", "^consumer_timeout", "/etc/rabbitmq/rabbitmq.conf"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    running = subprocess.run(
        ["docker", "exec", node, "rabbitmqctl", "eval", "application:get_env(rabbit, consumer_timeout)."],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return conf, running


def test_the_issues_consumer_timeout_from_the_command_line_is_applied(facts: Path) -> None:
    """`-e rabbitmq_consumer_timeout=3600000` (a string) reaches the config and the running node.

    Last, and not undone: it restarts the node (a rolling restart of one), and undoing it would restart it
    again; no test after it reads the setting, and Molecule destroys the scenario next. A later converge
    puts the scenario's value back.
    """
    run = converge(CHANGED_NODE, facts, "-e", "rabbitmq_consumer_timeout=3600000")
    assert run.returncode == 0, run.changes()
    assert consumer_timeout(CHANGED_NODE) == ("consumer_timeout = 3600000", "{ok,3600000}")
