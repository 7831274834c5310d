"""Packet captures on the test hosts (tcpdump), and what they show."""

from __future__ import annotations

from dataclasses import dataclass

import testinfra.host

from fleetlib.hosts import root
from fleetlib.waits import wait_for

FLAG_NAMES = {"R": "RST", "F": "FIN"}


def start_capture(host: testinfra.host.Host, name: str, expression: str) -> None:
    root(host, f"rm -f /root/{name}.txt /root/{name}.err")
    root(
        host,
        f"nohup tcpdump -i eth0 -n -tt -l -U '{expression}' > /root/{name}.txt 2> /root/{name}.err < /dev/null &",
    )
    assert wait_for(lambda: "listening on" in root(host, f"cat /root/{name}.err"), timeout=15)


@dataclass(frozen=True)
class Packet:
    when: float
    flags: str  # tcpdump's, e.g. "R." or "F."
    dst_port: int


def stop_capture(host: testinfra.host.Host, name: str) -> list[Packet]:
    """Stop tcpdump and return the captured packets."""
    root(host, "pkill -INT tcpdump || true")
    assert wait_for(lambda: host.run("pgrep tcpdump").rc != 0, timeout=15)
    packets = []
    for line in root(host, f"cat /root/{name}.txt").splitlines():
        if "Flags [" in line:
            # 1795317224.027580 IP 172.18.0.5.5672 > 172.18.0.6.39914: Flags [F.], ...
            fields = line.split()
            flags = line.split("Flags [")[1].split("]")[0]
            packets.append(Packet(float(fields[0]), flags, int(fields[4].rstrip(":").rsplit(".", 1)[1])))
    return packets


def first_teardown(packets: list[Packet], since: float, flags: tuple[str, ...]) -> tuple[float, str]:
    """When the first packet after `since` whose flags count as a teardown came, and what came within 1 s of it.

    E.g. (4.47, "FIN+RST"); (inf, "none") when none came.
    """
    times = sorted(p.when for p in packets if p.when >= since and p.flags[0] in flags)
    if not times:
        return float("inf"), "none"
    burst = sorted((p.when, FLAG_NAMES[p.flags[0]]) for p in packets if times[0] <= p.when <= times[0] + 1)
    return times[0], "+".join(dict.fromkeys(name for _, name in burst))
