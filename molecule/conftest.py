"""Helpers shared by the Molecule scenarios' testinfra tests.

The tests run on the control node. They reach the brokers over the Docker
network (the containers' addresses are routable from the host) with py-amqp,
the client Celery itself uses, and drive ansible-playbook for failure paths.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import amqp
import pytest
import testinfra.host

PROJECT_DIR = Path(__file__).resolve().parent.parent


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


def run_playbook(playbook: Path, inventory: dict[str, object], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ansible-playbook from the project with a throw-away inventory."""
    inventory_file = tmp_path / "inventory.json"
    inventory_file.write_text(json.dumps(inventory))
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROJECT_DIR / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(PROJECT_DIR / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(
        ["ansible-playbook", "--inventory", str(inventory_file), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_DIR,
        check=False,
        timeout=600,
    )


@pytest.fixture
def playbook_runner(tmp_path: Path) -> Callable[[Path, dict[str, object]], subprocess.CompletedProcess[str]]:
    return lambda playbook, inventory: run_playbook(playbook, inventory, tmp_path)
