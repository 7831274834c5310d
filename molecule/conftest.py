"""Helpers shared by the Molecule scenarios' testinfra tests.

The tests run on the control node. They reach the brokers over the Docker
network (the containers' addresses are routable from the host) with py-amqp,
the client Celery itself uses, and drive ansible-playbook for failure paths.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import amqp
import pytest
import testinfra.host
import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent


def scenario_group_vars(scenario: str) -> dict[str, dict[str, Any]]:
    """The inventory group_vars a scenario's molecule.yml gives its hosts."""
    config = yaml.safe_load((PROJECT_DIR / "molecule" / scenario / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults/main.yml."""
    return yaml.safe_load((PROJECT_DIR / "roles" / role / "defaults" / "main.yml").read_text())


def container_address(host: testinfra.host.Host) -> str:
    """The host's address on its Docker network."""
    return host.check_output("hostname -I").split()[0]


def amqp_connection(address: str, user: str, password: str, vhost: str, **kwargs: object) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{address}:5672", userid=user, password=password, virtual_host=vhost, connect_timeout=10, **kwargs
    )
    connection.connect()
    return connection


def rabbitmqctl_json(host: testinfra.host.Host, *args: str) -> object:
    with host.sudo():
        return json.loads(host.check_output("rabbitmqctl --formatter json " + " ".join(args)))


HAPROXY_SOCKET_SCRIPT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(sys.argv[2].encode() + b"\\n")
data = b""
while chunk := sock.recv(65536):
    data += chunk
print(data.decode())
"""


def haproxy_command(host: testinfra.host.Host, command: str, socket_path: str = "/run/haproxy/admin.sock") -> str:
    """Run one command on HAProxy's admin socket (Python stands in for socat)."""
    with host.sudo():
        return host.check_output(f"python3 -c '{HAPROXY_SOCKET_SCRIPT}' {socket_path} '{command}'")


def haproxy_server_status(host: testinfra.host.Host, backend: str = "rabbitmq") -> dict[str, str]:
    """Status (UP, DOWN, MAINT, ...) of each server of a backend, from `show stat`."""
    header, *rows = [line for line in haproxy_command(host, "show stat").splitlines() if line]
    columns = header.lstrip("# ").split(",")
    status = {}
    for row in rows:
        fields = dict(zip(columns, row.split(","), strict=False))
        if fields["pxname"] == backend and fields["svname"] not in ("FRONTEND", "BACKEND"):
            status[fields["svname"]] = fields["status"]
    return status


def haproxy_detection_bound_s() -> float:
    """Worst case from a broker failing to HAProxy marking it DOWN, from the haproxy role's defaults.

    inter + fall x timeout check + (fall - 1) x fastinter, as haproxy/haproxy.cfg states it.
    """
    defaults = role_defaults("haproxy")
    worst_ms = (
        defaults["haproxy_check_inter"]
        + defaults["haproxy_check_fall"] * defaults["haproxy_timeout_check"]
        + (defaults["haproxy_check_fall"] - 1) * defaults["haproxy_check_fastinter"]
    )
    return worst_ms / 1000


def health_agent_reply(host: testinfra.host.Host, broker: str) -> str:
    """What the broker's health agent answers HAProxy, asked from `host`."""
    port = role_defaults("rabbitmq")["rabbitmq_health_agent_port"]
    script = f"import socket, sys; print(socket.create_connection((sys.argv[1], {port}), 2).recv(200).decode())"
    return host.check_output(f"python3 -c '{script}' {broker}").strip()


def agent_detection_bound_s() -> float:
    """Worst case from a broker being cut off from its peers to HAProxy marking it DOWN.

    The round under way may have passed (interval); then `fall` rounds whose
    peer probes time out; then HAProxy's next agent check (agent-inter; the
    agent's verdict takes effect at once: HAProxy's rise and fall for agents are 1).
    """
    agent, haproxy = role_defaults("rabbitmq"), role_defaults("haproxy")
    worst_ms = (
        agent["rabbitmq_health_agent_interval"]
        + agent["rabbitmq_health_agent_fall"] * agent["rabbitmq_health_agent_timeout"]
        + haproxy["haproxy_agent_inter"]
    )
    return worst_ms / 1000


def assert_failed_before_any_change(result: subprocess.CompletedProcess[str], message: str) -> None:
    """The playbook stopped with this message, and no host reported a change."""
    assert result.returncode != 0, result.stdout
    assert message in " ".join(result.stdout.split()), result.stdout
    assert "changed=0" in result.stdout
    assert re.search(r"changed=[1-9]", result.stdout) is None, result.stdout


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll until predicate() is true or timeout seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def run_playbook(
    playbook: str | Path,
    inventory: str | Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path = PROJECT_DIR,
) -> subprocess.CompletedProcess[str]:
    """Run ansible-playbook from the project directory, as a user would.

    `env` and `cwd` replace the project's environment and directory: a run
    from somewhere else, e.g. a collection installed outside the checkout.
    """
    if env is None:
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(PROJECT_DIR / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(PROJECT_DIR / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    return subprocess.run(
        ["ansible-playbook", "--inventory", str(inventory), str(playbook), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=900,
    )


@pytest.fixture
def playbook_runner(tmp_path: Path) -> Callable[[Path, dict[str, object]], subprocess.CompletedProcess[str]]:
    """Run a playbook against a throw-away inventory (a dict in YAML inventory form)."""

    def run(playbook: Path, inventory: dict[str, object]) -> subprocess.CompletedProcess[str]:
        inventory_file = tmp_path / "inventory.json"
        inventory_file.write_text(json.dumps(inventory))
        return run_playbook(playbook, inventory_file)

    return run


@pytest.fixture
def playbook_runner_at() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a playbook against the scenario's own inventory (the one Molecule wrote)."""
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    return lambda playbook, *args: run_playbook(playbook, inventory, *args)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After the failover scenario's verify, print its results as a table."""
    import failover_results

    ran = [report for reports in terminalreporter.stats.values() for report in reports if hasattr(report, "nodeid")]
    if failover_results.RESULTS.exists() and any("molecule/failover" in report.nodeid for report in ran):
        terminalreporter.section(f"failover results ({failover_results.RESULTS})")
        for row in failover_results.table(json.loads(failover_results.RESULTS.read_text())):
            terminalreporter.write_line(row)
