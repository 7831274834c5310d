"""The haproxy role's int and bool variables from the command line: strings work as YAML, bad values are refused.

The tests are fleetlib.command_line's; this names the scenario's hosts.
"""

from __future__ import annotations

from fleetlib.command_line import CommandLineValues, RoleInputs

PROXIES = ["haproxy-trixie", "haproxy-bookworm"]


class TestHaproxyValuesFromTheCommandLine(CommandLineValues):
    role_inputs = RoleInputs(
        role="haproxy",
        scenario="haproxy",
        playbook="playbooks/haproxy.yml",
        group="haproxy",
        target=PROXIES[0],
        role_files=["/etc/haproxy/haproxy.cfg"],
        node=PROXIES[1],
        fact_hosts=PROXIES,
        other_groups={"rabbitmq": ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]},
    )
