"""Values from the command line: cases generated from a role's meta/argument_specs.yml, and the runs that try them.

For every int and bool variable of a role, `cases()` gives values the role
must refuse: of the wrong type ("abc" for an int; "maybe" and "y" for a bool:
Ansible's argument-spec validation takes "y" as true, `| bool` as false) and,
where the description gives a range, just outside it. Each is a string, as
`-e name=value` gives it.

`run_cases()` tries them all in ONE ansible-playbook run: every case is an
inventory alias of the same real, converged container, carrying its bad value
as a host var; the JSON callback then tells, per alias, which task stopped it,
with what message, and whether any task changed something. Facts come from a
pre-filled jsonfile fact cache (`fact_cache()`), so no alias gathers any.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from fleetlib.playbooks import json_env, json_playbook, run_ansible
from fleetlib.project import PROJECT_DIR, role_defaults, scenario_group_vars

# What the role must refuse, per type; "y" passes argument-spec validation and only the role's own check refuses it.
WRONG_TYPE = {"int": ("abc",), "bool": ("maybe", "y")}
ARGSPEC_ACTION = "ansible.builtin.validate_argument_spec"


@functools.cache
def role_inputs() -> ModuleType:
    """The collection's plugins/filter/role_inputs.py: every role's reading of types and ranges."""
    path = PROJECT_DIR / "plugins" / "filter" / "role_inputs.py"
    spec = importlib.util.spec_from_file_location("role_inputs", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def typed_options(role: str) -> dict[str, dict[str, Any]]:
    """The int and bool options of the role's main entry point, by name."""
    specs = yaml.safe_load((PROJECT_DIR / "roles" / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    return {name: option for name, option in options.items() if option.get("type") in ("int", "bool")}


def outside(intervals: Sequence[tuple[int | None, int | None]]) -> list[int]:
    """The integers just past each end of each interval that no interval holds: [(0, 0), (5, None)] -> [-1, 1, 4]."""
    below = [low - 1 for low, _ in intervals if low is not None]
    above = [high + 1 for _, high in intervals if high is not None]
    held = [range(-(2**63) if low is None else low, 2**63 if high is None else high + 1) for low, high in intervals]
    return sorted({n for n in below + above if not any(n in interval for interval in held)})


@dataclass(frozen=True)
class Case:
    """One value the role must refuse for one variable, and the inventory alias that carries it."""

    alias: str
    variable: str
    value: str
    why: str


def cases(role: str) -> list[Case]:
    """Every refusal case of the role: wrong types for each int and bool variable, out-of-range values for ranges."""
    inputs = role_inputs()
    found = []
    for name, option in typed_options(role).items():
        values = [(value, "wrong type") for value in WRONG_TYPE[option["type"]]]
        if option["type"] == "int":
            intervals = inputs.option_range(option)
            values += [(str(n), f"outside {inputs.range_words(intervals)}") for n in outside(intervals)]
        found += [Case(f"{name}-{index}", name, value, why) for index, (value, why) in enumerate(values)]
    return found


def effective_values(role: str, scenario: str, groups: Sequence[str] = ()) -> dict[str, object]:
    """The role's int and bool variables as the scenario converged a host of `groups`: defaults, then group_vars."""
    group_vars = scenario_group_vars(scenario)
    values = role_defaults(role) | group_vars["all"]
    for group in groups:
        values |= group_vars.get(group, {})
    return {name: values[name] for name in typed_options(role)}


def as_strings(values: Mapping[str, object]) -> list[str]:
    """`-e name=value` for each variable: every value a string, as a user types it."""
    args = []
    for name, value in values.items():
        args += ["--extra-vars", f"{name}={str(value).lower() if isinstance(value, bool) else value}"]
    return args


@dataclass(frozen=True)
class Outcome:
    """What one host's run came to, from the JSON callback."""

    host: str
    failed_task: str | None
    in_validation: bool
    message: str
    changed: int


def outcomes(report: Mapping[str, Any], role: str) -> dict[str, Outcome]:
    """Per host of an ansible.posix.json report: the task it failed in (if any), whether that task is part of
    the role's validation (argument-spec validation or tasks/validate.yml), its message, and its changes."""
    validate = f"/roles/{role}/tasks/validate.yml:"
    failures: dict[str, tuple[str, bool, str]] = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("failed") and host not in failures:
                    argspec = result.get("action") == ARGSPEC_ACTION and (
                        result.get("validate_args_context", {}).get("name") == role
                    )
                    failures[host] = (task["task"]["name"], argspec or validate in task["task"]["path"], result["msg"])
    return {
        host: Outcome(host, *failures.get(host, (None, False, "")), changed=stats["changed"])
        for host, stats in report["stats"].items()
    }


# Facts gathered so far in this test session, per inventory: one jsonfile cache holding every host gathered. A
# container's facts the roles read (its name, addresses, interfaces) stay as they are while a scenario runs, so
# each host is gathered once, however many tests need a fact cache.
_GATHERED: dict[Path, Path] = {}


def fact_cache(inventory: Path, hosts: Sequence[str], cache: Path) -> None:
    """The hosts' facts in a jsonfile fact cache at `cache`, each host gathered once per test session (with
    gather_facts, not setup: it marks them gathered, so that `gathering = smart` gathers them no more)."""
    gathered = _GATHERED.get(inventory)
    if gathered is None:
        gathered = _GATHERED[inventory] = Path(tempfile.mkdtemp(prefix="facts-"))
        atexit.register(shutil.rmtree, gathered, True)
    missing = [host for host in hosts if not any(_cache_names(gathered, host))]
    if missing:
        result = run_ansible(
            "ansible",
            "--inventory",
            str(inventory),
            ",".join(missing),
            "-m",
            "ansible.builtin.gather_facts",
            env=json_env(gathered),
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    for host in hosts:
        found = cached(gathered, host)
        shutil.copyfile(found, cache / found.name)


def _cache_names(cache: Path, host: str) -> list[Path]:
    return [path for path in cache.iterdir() if path.name == host or path.name.endswith("_" + host)]


def cached(cache: Path, host: str) -> Path:
    """A host's file in the jsonfile fact cache (ansible-core names it with a prefix of its own, e.g. s1_)."""
    found = _cache_names(cache, host)
    assert len(found) == 1, (host, sorted(path.name for path in cache.iterdir()))
    return found[0]


def run_cases(
    role: str,
    found: Sequence[Case],
    *,
    playbook_path: str,
    group: str,
    target: str,
    host_vars: Mapping[str, object],
    groups: Mapping[str, Sequence[str]],
    cache: Path,
    workdir: Path,
) -> dict[str, Outcome]:
    """Try every case in one run of `playbook_path`: each alias in `group` (the group the playbook targets) is
    the container `target`, with `host_vars` (the scenario's connection and variables) and its bad value; the
    other `groups` name real hosts the role reads but the play never reaches. Facts: `target`'s, from `cache`."""
    aliases = {case.alias: {**host_vars, "ansible_host": target, case.variable: case.value} for case in found}
    inventory = {
        "all": {
            "children": {
                group: {"hosts": aliases},
                **{name: {"hosts": {member: {} for member in members}} for name, members in groups.items()},
            }
        }
    }
    path = workdir / "cases.json"
    path.write_text(json.dumps(inventory))
    facts = cached(cache, target)
    for alias in aliases:
        shutil.copyfile(facts, facts.with_name(facts.name.removesuffix(target) + alias))
    run = json_playbook(playbook_path, path, cache)
    return outcomes(run.report, role)


def unrefused(found: Sequence[Case], results: Mapping[str, Outcome]) -> list[str]:
    """The cases the role did not refuse as it must: stopped in its validation, by a message that names the
    variable and quotes the value, with no task changed."""
    wrong = []
    for case in found:
        outcome = results.get(case.alias)
        if (
            outcome is None
            or not outcome.in_validation
            or case.variable not in outcome.message
            or f"'{case.value}'" not in outcome.message
            or outcome.changed
        ):
            wrong.append(f"{case.variable}={case.value!r} ({case.why}): {outcome}")
    return wrong


def docker_exec(container: str, *argv: str) -> str:
    """A command's output in a container, through the Docker API (it must succeed)."""
    return subprocess.run(["docker", "exec", container, *argv], capture_output=True, text=True, check=True).stdout


def checksums(container: str, paths: Sequence[str]) -> dict[str, str]:
    """The sha256 of each file in a container."""
    listing = docker_exec(container, "sha256sum", *paths)
    return {path: digest for digest, path in (line.split(maxsplit=1) for line in listing.splitlines())}
