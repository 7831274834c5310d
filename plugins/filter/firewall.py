"""Checks of the firewall role's input, before a table reaches nft.

A table is replaced whole at every load, so a bad entry must be refused
before the file is written: a name that is not an nft identifier, a port out
of range, a source that is not an IPv4 address or network (nft would try to
resolve a name, at boot, before the network is up), or a comment on more
than one line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


def _source_problem(source: object) -> str | None:
    try:
        ipaddress.IPv4Network(str(source), strict=False)
    except ValueError:
        return f"source {source!r} is not an IPv4 address or network"
    return None


# IP protocols a tier may admit whole (no port), by nft's name: VRRP between the proxies that share an address.
PROTOCOLS = ("vrrp",)


def _key(item: Mapping[str, Any]) -> str:
    """What an entry admits: a TCP port, or an IP protocol by name."""
    return f"protocol {item['protocol']}" if item.get("protocol") is not None else f"port {item.get('port')}"


def _port_problems(item: Mapping[str, Any]) -> list[str]:
    problems = []
    port, protocol = item.get("port"), item.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        problems.append(f"protocol {protocol!r} is not one of {', '.join(PROTOCOLS)} (leave it out for a TCP port)")
    elif protocol is None and (isinstance(port, bool) or not str(port).isdigit() or not 1 <= int(str(port)) <= 65535):
        problems.append(f"port {port!r} is not a TCP port (1-65535)")
    problems += [p for p in (_source_problem(source) for source in item.get("sources", [])) if p]
    what = str(item.get("what", ""))
    if not what or "\n" in what:
        problems.append(f"{_key(item)}: 'what' must say on one line what listens there")
    return problems


def firewall_port_problems(ports: Sequence[Mapping[str, Any]], name: str) -> list[str]:
    """Everything wrong with a table's name and ports, each naming the fix; [] when it can be loaded."""
    problems = []
    if not _NAME.match(str(name)):
        problems.append(f"firewall_name {name!r} must be a lower-case word (letters, digits, _), e.g. rabbitmq.")
    seen: set[str] = set()
    for item in ports:
        problems += _port_problems(item)
        if _key(item) in seen:
            problems.append(f"{_key(item)} is listed twice: give it one entry with every source.")
        seen.add(_key(item))
    return problems


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"firewall_port_problems": firewall_port_problems}
