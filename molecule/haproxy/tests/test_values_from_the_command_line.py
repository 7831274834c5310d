"""The haproxy role's int and bool variables from the command line: strings work as YAML, bad values are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import scenario_group_vars
from fleetlib import inputs

INVENTORY = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "inventory")).parent
SCENARIO_VARS = scenario_group_vars("haproxy")
PROXIES = ["haproxy-trixie", "haproxy-bookworm"]
BROKERS = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
ROLE_FILES = ["/etc/haproxy/haproxy.cfg"]


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The proxies' facts, gathered once: no run below gathers any."""
    cache = tmp_path_factory.mktemp("facts")
    inputs.fact_cache(INVENTORY, PROXIES, cache)
    return cache


def test_every_bad_int_or_bool_value_is_refused_before_any_change(facts: Path, tmp_path: Path) -> None:
    found = inputs.cases("haproxy")
    before = inputs.checksums(PROXIES[0], ROLE_FILES)
    results = inputs.run_cases(
        "haproxy",
        found,
        playbook_path="playbooks/haproxy.yml",
        group="haproxy",
        target=PROXIES[0],
        host_vars={"ansible_connection": "community.docker.docker", **SCENARIO_VARS["all"]},
        groups={"rabbitmq": BROKERS},
        cache=facts,
        workdir=tmp_path,
    )
    assert inputs.unrefused(found, results) == []
    assert inputs.checksums(PROXIES[0], ROLE_FILES) == before


@pytest.mark.parametrize("form", [inputs.as_strings, inputs.as_json], ids=["strings", "json"])
def test_values_on_the_command_line_work_as_yaml(facts: Path, form: inputs.Form) -> None:
    """Every int and bool variable at its converged value, as `-e name=value` strings or as JSON: no change."""
    values = inputs.effective_values("haproxy", "haproxy")
    run = inputs.playbook("playbooks/haproxy.yml", INVENTORY, facts, "--limit", PROXIES[1], *form(values))
    assert (run.returncode, run.changed()) == (0, {PROXIES[1]: 0}), run.changes()
