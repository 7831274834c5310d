"""The roles scenario's second run: its converge again, at -vvv --diff, changes nothing and prints no secret.

It stands in for Molecule's idempotence step, which would be one more run of the same converge. At the highest
verbosity every task's arguments and results are printed, and --diff prints every file it compares, so a
password, the Erlang cookie or a private key (the CA's or a host's) handled anywhere in the roles would show here.
(A run that changes a password, from a vault, is test_password_rotation.py's.)
"""

from __future__ import annotations

from pathlib import Path

import testinfra.host
from fleetlib.hosts import get
from fleetlib.playbook_output import assert_nothing_changed, changed_tasks
from fleetlib.playbooks import run_playbook
from fleetlib.project import PROJECT_DIR, scenario_group_vars
from fleetlib.vaults import leaked, private_key_lines, redacted
from roles_stack import EVERY_HOST, PROXIES, WORKERS

testinfra_hosts = ["ansible://rmq-trixie-1"]

CONVERGE = PROJECT_DIR / "molecule" / "roles" / "converge.yml"
GROUP_VARS = scenario_group_vars("roles")["all"]


def test_a_second_converge_changes_nothing_and_prints_no_secret(
    host: testinfra.host.Host, scenario_inventory: Path
) -> None:
    with host.sudo():
        cookie = host.file("/var/lib/rabbitmq/.erlang.cookie").content_string.strip()
    secret_values = {
        "app password": GROUP_VARS["rabbitmq_app_password"],
        "monitoring password": GROUP_VARS["rabbitmq_monitoring_password"],
        "Erlang cookie": cookie,
        **private_key_lines("the CA's key", (scenario_inventory / ".secrets" / "pki" / "ca.key").read_text()),
    }
    # One host of each tier: its key, made on it by the pki role.
    for name, path in [
        ("rmq-trixie-1", "/etc/rabbitmq/tls"),
        (PROXIES[0], "/etc/haproxy/tls"),
        (WORKERS[0], "/etc/celery-fleet/tls"),
    ]:
        machine = get(host, name)
        with machine.sudo():
            secret_values |= private_key_lines(f"{name}'s key", machine.file(f"{path}/host.key").content_string)
    result = run_playbook(CONVERGE, scenario_inventory, "-vvv", "--diff")
    # The output at -vvv is large: an assertion shows its end, with any secret replaced by its name.
    counts = assert_nothing_changed(result, EVERY_HOST, show=lambda output: redacted(output[-5000:], secret_values))
    assert set(counts) == set(EVERY_HOST), sorted(counts)
    assert sorted(changed_tasks(result.stdout)) == []
    assert leaked(result.stdout + result.stderr, secret_values) == []
