"""Helpers shared by the Molecule scenarios' testinfra tests.

The tests run on the control node. They reach the brokers over the Docker
network (the containers' addresses are routable from the host) with py-amqp,
the client Celery itself uses, and drive ansible-playbook for failure paths.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
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


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll until predicate() is true or timeout seconds pass; return the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def run_playbook(playbook: str | Path, inventory: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ansible-playbook from the project directory, as a user would."""
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
        cwd=PROJECT_DIR,
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
