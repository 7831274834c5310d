"""Hosts of an Ansible inventory reached the way its playbooks reach them, for tools run outside Molecule
(`make drill` on the lab): the inventory's groups, each host's variables as Ansible renders them, and a testinfra
host over SSH with the inventory's user, key and options."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import testinfra
import testinfra.host
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible.vars.manager import VariableManager

from fleetlib.project import PROJECT_DIR

# The connection variables a testinfra SSH host needs, rendered as Ansible would.
CONNECTION_VARS = ("ansible_host", "ansible_user", "ansible_ssh_private_key_file", "ansible_ssh_common_args")


@dataclass(frozen=True)
class InventoryHosts:
    groups: dict[str, list[str]]
    variables: dict[str, dict[str, Any]]

    def host(self, name: str) -> testinfra.host.Host:
        """The host over SSH, as the playbooks connect (ansible.cfg's ssh_args too: one reused connection)."""
        variables = self.variables[name]
        config = configparser.ConfigParser()
        config.read(os.environ.get("ANSIBLE_CONFIG", PROJECT_DIR / "ansible.cfg"))
        control_path = "-o ControlPath=" + str(Path("~/.ansible/cp/drill-%C").expanduser())
        extra = " ".join([config.get("ssh_connection", "ssh_args", fallback=""), control_path,
                          variables.get("ansible_ssh_common_args", "")]).strip()  # fmt: skip
        return testinfra.get_host(
            f"ssh://{variables.get('ansible_user', 'root')}@{variables.get('ansible_host', name)}",
            ssh_identity_file=variables.get("ansible_ssh_private_key_file"),
            ssh_extra_args=extra,
        )

    def group(self, name: str) -> list[str]:
        if not self.groups.get(name):
            raise ValueError(f"the inventory has no hosts in group {name!r}")
        return self.groups[name]


def inventory_hosts(inventory: Path, wanted: tuple[str, ...] = CONNECTION_VARS) -> InventoryHosts:
    """Every host's `wanted` variables, rendered; group membership. Vaulted values are not read."""
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    rendered = {}
    for host in manager.get_hosts():
        host_vars = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=host_vars)
        rendered[host.name] = {name: templar.template(host_vars[name]) for name in wanted if name in host_vars}
    groups = {group.name: [host.name for host in group.get_hosts()] for group in manager.groups.values()}
    return InventoryHosts(groups, rendered)
