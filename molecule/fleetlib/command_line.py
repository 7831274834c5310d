"""The tests of a role's int and bool variables from the command line, shared by the roles.

The roles scenario's tests/test_values_from_the_command_line.py has one
subclass of `CommandLineValues` per role (rabbitmq, haproxy, celery_worker),
each naming that role's hosts (`RoleInputs`); pytest collects the inherited
tests there. This base class is not collected itself (its name does not start
with "Test").

Two tests per role: every bad value `inputs.cases()` generates is refused
before any change (one run, each case an inventory alias of `target`), and
every variable at its converged value, as `-e name=value` strings, converges
`node` with no change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import pytest

from fleetlib import inputs
from fleetlib.playbooks import JsonRun, json_playbook
from fleetlib.project import scenario_group_vars


@dataclass(frozen=True)
class RoleInputs:
    """Where a scenario tries its role's command-line values."""

    role: str
    scenario: str
    # The playbook that applies the role, and the group its play targets (the refusal cases' aliases join it).
    playbook: str
    group: str
    # The container the refusal cases' aliases stand for; its `role_files` must not change.
    target: str
    role_files: Sequence[str]
    # The host the values-as-YAML runs converge (--limit), the groups whose group_vars it has beyond `all`, and
    # the playbook they run (default: `playbook`).
    node: str
    node_groups: Sequence[str] = ()
    converge: str = ""
    # Hosts whose facts are gathered once (a run --limit'ed to one host takes the others' from the cache).
    fact_hosts: Sequence[str] = ()
    # Groups whose group_vars the aliases carry beyond `all`; other groups of real hosts the role reads.
    alias_groups: Sequence[str] = ()
    other_groups: Mapping[str, Sequence[str]] = field(default_factory=dict)
    # The aliases are a cluster group the role wants odd: add a case again when their number is even.
    odd_cases: bool = False

    def alias_vars(self) -> dict[str, object]:
        group_vars = scenario_group_vars(self.scenario)
        values: dict[str, object] = {"ansible_connection": "community.docker.docker", **group_vars["all"]}
        for group in self.alias_groups:
            values |= group_vars[group]
        return values


class CommandLineValues:
    """Subclass as `Test...` in a scenario's tests/ directory, with `role_inputs` set."""

    role_inputs: ClassVar[RoleInputs]

    @pytest.fixture(scope="class")
    def facts(self, tmp_path_factory: pytest.TempPathFactory, scenario_inventory: Path) -> Path:
        """The hosts' facts, gathered once: no run below gathers any."""
        cache = tmp_path_factory.mktemp("facts")
        inputs.fact_cache(scenario_inventory, list(self.role_inputs.fact_hosts), cache)
        return cache

    def converge(self, node: str, facts: Path, inventory: Path, *args: str) -> JsonRun:
        """The scenario's converge on one node (its peers' facts from the cache), with these arguments."""
        playbook = self.role_inputs.converge or self.role_inputs.playbook
        return json_playbook(playbook, inventory, facts, "--limit", node, *args)

    def test_every_bad_int_or_bool_value_is_refused_before_any_change(self, facts: Path, tmp_path: Path) -> None:
        role = self.role_inputs
        found = inputs.cases(role.role)
        if role.odd_cases and len(found) % 2 == 0:
            found.append(replace(found[0], alias=f"{found[0].alias}-again"))
        before = inputs.checksums(role.target, role.role_files)
        results = inputs.run_cases(
            role.role,
            found,
            playbook_path=role.playbook,
            group=role.group,
            target=role.target,
            host_vars=role.alias_vars(),
            groups=role.other_groups,
            cache=facts,
            workdir=tmp_path,
        )
        assert inputs.unrefused(found, results) == []
        assert inputs.checksums(role.target, role.role_files) == before

    def test_values_on_the_command_line_work_as_yaml(self, facts: Path, scenario_inventory: Path) -> None:
        """Every int and bool variable at its converged value, as `-e name=value` strings: no change.

        Strings are the one form the converge itself does not try: its group_vars, like a JSON `-e` document,
        carry ints and bools with their types (a run with those as JSON cost a converge and found nothing more)."""
        role = self.role_inputs
        values = inputs.effective_values(role.role, role.scenario, role.node_groups)
        run = self.converge(role.node, facts, scenario_inventory, *inputs.as_strings(values))
        assert (run.returncode, run.changed()) == (0, {role.node: 0}), run.changes()
