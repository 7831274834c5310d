"""Running Ansible from the project directory, as a user would: the one place the tests and tools start it.

`run_playbook` gives ansible-playbook's text output; `json_playbook` runs with
the JSON callback (and a jsonfile fact cache) for tests that read per-host,
per-task results; `run_ansible` runs any other Ansible command-line tool
(ansible, ansible-inventory, ansible-vault) the same way.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetlib.project import PROJECT_DIR

Inventory = str | Path | Sequence[str | Path]
# Where each run's output is kept.
RUN_LOGS = PROJECT_DIR / ".cache" / "ansible-runs"
_RUN_NUMBERS = itertools.count(1)


def ansible_env(**settings: str) -> dict[str, str]:
    """A user's environment with the project's ansible.cfg and roles and no colour; plus these ANSIBLE_* settings."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROJECT_DIR / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(PROJECT_DIR / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        **settings,
    }


def run_ansible(
    tool: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = PROJECT_DIR,
    timeout: float | None = 900,
) -> subprocess.CompletedProcess[str]:
    """Run an Ansible command-line tool from the project directory (or `cwd`); the caller checks the outcome."""
    return subprocess.run(
        [tool, *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else ansible_env(),
        cwd=cwd,
        check=False,
        timeout=timeout,
    )


def keep_output(result: subprocess.CompletedProcess[str]) -> None:
    """A playbook run's command line, exit code and output (with its per-task timings), in a file of its own under
    .cache/ansible-runs/: where a slow or failed step went, after the run. (Playbooks only: ansible-vault's output
    can be a secret.)"""
    RUN_LOGS.mkdir(parents=True, exist_ok=True)
    tool, *args = map(str, result.args)
    name = "-".join([tool, *(Path(arg).stem for arg in args if arg.endswith(".yml"))])
    log = RUN_LOGS / f"{time.strftime('%H%M%S')}-{os.getpid()}-{next(_RUN_NUMBERS):03d}-{name}.log"
    log.write_text(f"{shlex.join([tool, *args])}\nrc={result.returncode}\n{result.stdout}\n{result.stderr}")


def inventory_args(inventory: Inventory | None) -> list[str]:
    """--inventory for each inventory given (none: ansible.cfg's)."""
    if inventory is None:
        return []
    inventories = [inventory] if isinstance(inventory, str | Path) else list(inventory)
    return [arg for item in inventories for arg in ("--inventory", str(item))]


def run_playbook(
    playbook: str | Path,
    inventory: Inventory | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = PROJECT_DIR,
    timeout: float | None = 900,
) -> subprocess.CompletedProcess[str]:
    """Run ansible-playbook from the project directory, as a user would.

    `playbook` is a path from the project directory (or absolute); `inventory` one or several inventories
    (None: ansible.cfg's); `args` go to ansible-playbook as they are. `env` and `cwd` replace the project's
    environment and directory: a run from somewhere else, e.g. a collection installed outside the checkout.
    """
    result = run_ansible(
        "ansible-playbook", *inventory_args(inventory), str(playbook), *args, env=env, cwd=cwd, timeout=timeout
    )
    keep_output(result)
    return result


def assert_failed_before_any_change(result: subprocess.CompletedProcess[str], message: str) -> None:
    """The playbook stopped with this message, and no host reported a change."""
    assert result.returncode != 0, result.stdout
    assert message in " ".join(result.stdout.split()), result.stdout
    assert "changed=0" in result.stdout
    assert re.search(r"changed=[1-9]", result.stdout) is None, result.stdout


@dataclass(frozen=True)
class JsonRun:
    """An ansible-playbook run with the JSON callback: its exit code, report and standard error."""

    returncode: int
    report: dict[str, Any]
    stderr: str

    def changed(self) -> dict[str, int]:
        """How many tasks changed something, per host (the recap's changed=)."""
        return {host: stats["changed"] for host, stats in self.report["stats"].items()}

    def changes(self) -> list[str]:
        """What changed or failed, one line per host and task: the message of a failed assertion."""
        return [
            f"{host}: {task['task']['name']}: {'changed' if result.get('changed') else result.get('msg')}"
            for play in self.report["plays"]
            for task in play["tasks"]
            for host, result in task["hosts"].items()
            if result.get("changed") or result.get("failed")
        ]


def cached_facts_env(cache: Path, **settings: str) -> dict[str, str]:
    """A user's environment with a jsonfile fact cache at `cache` (and these ANSIBLE_* settings)."""
    return ansible_env(
        ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile",
        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(cache),
        # A host with facts in the cache gathers none.
        ANSIBLE_GATHERING="smart",
        **settings,
    )


def json_env(cache: Path) -> dict[str, str]:
    """A user's environment with the JSON callback and a jsonfile fact cache at `cache`."""
    return cached_facts_env(
        cache,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        # ansible.cfg enables profile_tasks, which would print into the JSON; list only the JSON callback.
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
    )


def json_playbook(playbook: str, inventory: Inventory, cache: Path, *args: str) -> JsonRun:
    """Run a project playbook as a user would, with the JSON callback and the fact cache."""
    result = run_playbook(PROJECT_DIR / playbook, inventory, *args, env=json_env(cache))
    assert result.stdout.lstrip().startswith("{"), result.stdout + result.stderr
    return JsonRun(result.returncode, json.loads(result.stdout), result.stderr)
