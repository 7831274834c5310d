"""Addresses: where listeners bind, what the firewall admits, what an IPv4 address is (plugins/filter, plugins/test)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from host_address import host_address, tier_addresses
from ip_address import ipv4_address


def test_an_ip_ansible_host_is_the_address() -> None:
    assert host_address({"inventory_hostname": "b1", "ansible_host": "10.0.0.11"}) == "10.0.0.11"


def test_a_named_host_uses_its_default_route_address() -> None:
    host_vars = {"inventory_hostname": "b1", "ansible_host": "b1.example.org",
                 "ansible_facts": {"default_ipv4": {"address": "10.0.0.12"}}}  # fmt: skip
    assert host_address(host_vars) == "10.0.0.12"


def test_no_address_is_an_error_naming_the_host_and_the_fix() -> None:
    with pytest.raises(AnsibleFilterError, match=r"no address for b1: its ansible_host \('b1.example.org'\)"):
        host_address({"inventory_hostname": "b1", "ansible_host": "b1.example.org"})


def test_a_tier_is_its_hosts_addresses_once_each_in_order() -> None:
    hostvars = {
        "b2": {"inventory_hostname": "b2", "ansible_host": "10.0.0.12"},
        "b1": {"inventory_hostname": "b1", "ansible_host": "b1", "rabbitmq_listen_address": "10.0.0.9"},
        "b3": {"inventory_hostname": "b3", "ansible_host": "10.0.0.12"},
    }
    assert tier_addresses(["b2", "b1", "b3"], hostvars, "rabbitmq_listen_address") == ["10.0.0.9", "10.0.0.12"]


@pytest.mark.parametrize("value", ["10.0.0.11", "192.0.2.21", "127.0.0.1"])
def test_a_dotted_quad_is_an_ipv4_address(value: str) -> None:
    assert ipv4_address(value)


@pytest.mark.parametrize("value", ["999.1.1.1", "10.0.0", "10.0.0.0/24", "::1", "rabbitmq-1", "", None, 10])
def test_anything_else_is_refused(value: object) -> None:
    assert not ipv4_address(value)
