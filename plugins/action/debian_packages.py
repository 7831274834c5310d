"""celery_fleet.fleet.debian_packages: install Debian packages, asking dpkg first whether anything is missing.

apt opens its whole package cache to find that nothing is missing (0.8 s of CPU per host); dpkg-query answers in
0.04 s, so apt runs only for what is missing. A run that installs nothing (check mode, or tags that leave out
`install`) cannot predict what follows on a host without the packages, so the action refuses such a host before
any change, saying why and what to run (plugins/module_utils/run_phases.py). The read runs in check mode too.
`install: false` only reads and refuses: a role that installs later (rabbitmq puts its configuration in place
first) calls it again there.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.plugins.action import ActionBase
from ansible_collections.celery_fleet.fleet.plugins.module_utils.run_phases import (
    missing_packages,
    unconverged_host_problem,
)

ARGUMENT_SPEC = {
    "names": {"type": "list", "elements": "str", "required": True},
    "refuse_unconverged": {"type": "bool", "default": True},
    "install": {"type": "bool", "default": True},
    "versions": {"type": "dict", "default": {}},
}
# A package list apt fetched within this many seconds is not fetched again.
CACHE_VALID_S = 3600


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        names: list[str] = args["names"]
        missing = self._missing(names)
        if isinstance(missing, dict):
            return {**result, **missing}
        result.update(changed=False, missing=missing)
        if not missing:
            return result
        if args["refuse_unconverged"]:
            problem = unconverged_host_problem(
                missing,
                task_vars.get("inventory_hostname", "?"),
                bool(self._task.check_mode),
                task_vars.get("ansible_run_tags", ["all"]),
                task_vars.get("ansible_skip_tags", []),
            )
            if problem:
                return {**result, "failed": True, "msg": problem}
        if not args["install"]:
            return result
        versions: dict[str, str] = args["versions"]
        wanted = [f"{name}={versions[name]}" if versions.get(name) else name for name in missing]
        apt = self._execute_module(
            module_name="ansible.builtin.apt",
            module_args={"name": wanted, "state": "present", "update_cache": True, "cache_valid_time": CACHE_VALID_S},
            task_vars=task_vars,
        )
        return {**result, **apt, "missing": missing}

    def _missing(self, names: list[str]) -> list[str] | dict[str, Any]:
        """The packages dpkg does not report installed, or a failed result."""
        query = ["dpkg-query", "--show", "--showformat", "${Package} ${db:Status-Status}\n", *names]
        # A raw command, not the command module: it reads only, so it runs in check mode as well.
        answer = self._low_level_execute_command(shlex.join(query))
        # dpkg-query exits 1 for a package it has never seen.
        if answer["rc"] not in (0, 1):
            return {"failed": True, "msg": f"dpkg-query failed (rc {answer['rc']}): {answer['stderr'].strip()}"}
        return missing_packages(answer["stdout"].splitlines(), names)
