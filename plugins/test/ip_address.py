"""Jinja tests for addresses: `x is celery_fleet.fleet.ipv4_address`.

The roles bind every listener to one IPv4 address per host (Erlang's
inet_dist_use_interface and RabbitMQ's listeners take a dotted quad), so a
role refuses anything else before it changes a host.
"""

from __future__ import annotations

import ipaddress


def ipv4_address(value: object) -> bool:
    """Whether `value` is one IPv4 address in dotted-quad form (not a name, a network or IPv6)."""
    try:
        ipaddress.IPv4Address(str(value))
    except ValueError:
        return False
    return True


class TestModule:
    def tests(self) -> dict[str, object]:
        return {"ipv4_address": ipv4_address}
