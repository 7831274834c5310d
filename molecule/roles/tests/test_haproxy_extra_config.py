"""The haproxy role's extra lines (haproxy_extra_*, set in molecule.yml): each ends its section and takes effect;
a line that would break the file is refused before any change."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import testinfra.host
from fleetlib.playbooks import assert_failed_before_any_change
from fleetlib.project import scenario_group_vars
from fleetlib.proxies import haproxy_command, haproxy_stats

testinfra_hosts = ["ansible://haproxy"]

EXTRA = {name: lines for name, lines in scenario_group_vars("roles")["haproxy"].items() if "_extra_" in name}
HEADERS = {
    "haproxy_extra_global": "global",
    "haproxy_extra_defaults": "defaults",
    "haproxy_extra_frontend": "frontend amqp",
    "haproxy_extra_backend": "backend rabbitmq",
}
AMQP_GREETING_SCRIPT = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
sock.sendall(b"AMQP\\x00\\x00\\x09\\x01")
print(sock.recv(7).hex())
"""


def section_of(config: list[str], index: int) -> str:
    """The header of the section that holds line `index`."""
    return next(line for line in reversed(config[:index]) if line and not line[0].isspace() and line[0] != "#")


def test_every_extra_line_ends_its_section(host: testinfra.host.Host) -> None:
    assert set(EXTRA) == set(HEADERS)
    with host.sudo():
        config = host.file("/etc/haproxy/haproxy.cfg").content_string.splitlines()
    for name, lines in EXTRA.items():
        marker = config.index(f"    # Added by {name}:")
        assert config[marker + 1 : marker + 1 + len(lines)] == [f"    {line}" for line in lines]
        assert section_of(config, marker) == HEADERS[name]
        # The next line ends the section: a blank line before the next header.
        assert config[marker + 1 + len(lines)] == ""


def test_the_global_line_sets_the_thread_count(host: testinfra.host.Host) -> None:
    assert EXTRA["haproxy_extra_global"] == ["nbthread 2"]
    assert "Nbthread: 2" in haproxy_command(host, "show info").splitlines()


def test_the_frontend_line_adds_an_amqp_listener(host: testinfra.host.Host) -> None:
    assert EXTRA["haproxy_extra_frontend"] == ["bind 127.0.0.1:5673"]
    # connection.start: frame type 1, channel 0 (then the frame size).
    assert host.check_output(f"python3 -c '{AMQP_GREETING_SCRIPT}' 5673").startswith("010000")


def test_the_backend_line_sets_the_full_load_threshold(host: testinfra.host.Host) -> None:
    assert EXTRA["haproxy_extra_backend"] == ["fullconn 1000"]
    # A backend's session limit in the stats is its fullconn.
    assert haproxy_stats(host)["BACKEND"]["slim"] == "1000"


def test_a_line_that_would_break_the_file_is_refused_before_any_change(
    playbook_runner_at: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    bad = {"haproxy_extra_backend": ["fullconn 1000", "listen stats"]}
    result = playbook_runner_at("playbooks/haproxy.yml", "--extra-vars", json.dumps(bad))
    assert_failed_before_any_change(result, "haproxy_extra_backend[1] starts a new section")
