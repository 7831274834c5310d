"""The address a host serves on, and the addresses of a tier, from the inventory.

Every listener of the deployment binds to one address per host, never every
interface, and the opt-in firewall admits each port from a tier's addresses.
Both come from here: a host's `ansible_host` when it is an IP address (how
the lab, the scenarios and most fleets are written), else the address of its
default route's interface (network facts). A role's own variable
(`rabbitmq_listen_address`, `haproxy_listen_address`) overrides it per host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError


def _ip(text: object) -> str:
    """`text` as an IP address string, '' when it is not one."""
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        return ""


def host_address(host_vars: Mapping[str, Any]) -> str:
    """One host's address: ansible_host if it is an IP, else its default IPv4 address (network facts)."""
    name = host_vars.get("inventory_hostname", "?")
    address = _ip(host_vars.get("ansible_host", ""))
    if address:
        return address
    facts = host_vars.get("ansible_facts", {}) or {}
    default = facts.get("default_ipv4", {}) or host_vars.get("ansible_default_ipv4", {}) or {}
    address = _ip(default.get("address", ""))
    if address:
        return address
    raise AnsibleFilterError(
        f"no address for {name}: its ansible_host ({host_vars.get('ansible_host', 'unset')!r}) is not an IP "
        "address and no network facts name its default one. Set ansible_host to the host's address, or the "
        "role's listen address variable (rabbitmq_listen_address, haproxy_listen_address) for it."
    )


def tier_addresses(hosts: Sequence[str], hostvars: Mapping[str, Mapping[str, Any]], variable: str = "") -> list[str]:
    """The addresses of `hosts`: each host's `variable` if set (and an IP), else host_address()."""
    addresses = []
    for host in hosts:
        host_vars = hostvars[host]
        chosen = _ip(host_vars.get(variable, "")) if variable else ""
        addresses.append(chosen or host_address(host_vars))
    return sorted(set(addresses), key=lambda text: ipaddress.ip_address(text))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"host_address": host_address, "tier_addresses": tier_addresses}
