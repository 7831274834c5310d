"""An operator's run of site.yml: secrets at -vvv, a vault, an unreachable broker, missing tiers.

Each case runs the real playbook against this scenario's converged stack, the way
`ansible-playbook -i <inventory> playbooks/site.yml` runs against a fleet.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import testinfra.host
import yaml
from fleetlib.brokers import amqp_connection
from fleetlib.hosts import container_address, get
from fleetlib.playbooks import assert_failed_before_any_change, run_ansible, run_playbook
from fleetlib.project import PROJECT_DIR, scenario_group_vars

# One host runs these: each case is a whole-fleet playbook run.
testinfra_hosts = ["ansible://rmq-trixie-1"]

SITE = PROJECT_DIR / "playbooks" / "site.yml"
SCENARIO_VARS = scenario_group_vars("roles")
APP_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_app_password"]
MONITORING_PASSWORD = SCENARIO_VARS["all"]["rabbitmq_monitoring_password"]
CONFIG_FILES = {
    "rmq-trixie-1": "/etc/rabbitmq/rabbitmq.conf",
    "haproxy-trixie": "/etc/haproxy/haproxy.cfg",
    "worker-trixie": "/etc/supervisor/supervisord.conf",
}


def sha256(host: testinfra.host.Host, path: str) -> str:
    with host.sudo():
        return host.check_output(f"sha256sum {path}").split()[0]


def config_checksums(host: testinfra.host.Host) -> dict[str, str]:
    return {name: sha256(get(host, name), path) for name, path in CONFIG_FILES.items()}


def vault_file(directory: Path, password: str, content: dict[str, str]) -> Path:
    """A vars file encrypted with ansible-vault, as users keep their secrets."""
    password_file = directory / "vault-password"
    password_file.write_text(password)
    vars_file = directory / "vault.yml"
    vars_file.write_text(yaml.safe_dump(content))
    encrypted = run_ansible("ansible-vault", "encrypt", "--vault-password-file", str(password_file), str(vars_file))
    assert encrypted.returncode == 0, encrypted.stderr
    assert not any(value in vars_file.read_text() for value in content.values())
    return vars_file


def leaked(output: str, secret_values: dict[str, str]) -> list[str]:
    """Which secrets appear in the output (their names only: the test must not print them either)."""
    return [name for name, value in secret_values.items() if value in output]


@pytest.mark.usefixtures("stack_whole")
def test_secrets_never_appear_in_verbose_output(
    host: testinfra.host.Host, tmp_path: Path, scenario_inventory: Path
) -> None:
    """A converge at -vvv --diff that changes a password from a vault prints no secret."""
    with host.sudo():
        cookie = host.file("/var/lib/rabbitmq/.erlang.cookie").content_string.strip()
    rotated = f"rotated-{secrets.token_hex(12)}"
    vars_file = vault_file(tmp_path, "vault-pass-for-tests", {"rabbitmq_monitoring_password": rotated})
    secret_values = {
        "app password": APP_PASSWORD,
        "monitoring password": MONITORING_PASSWORD,
        "vault value (the new monitoring password)": rotated,
        "Erlang cookie": cookie,
    }
    try:
        result = run_playbook(
            SITE,
            scenario_inventory,
            "-vvv",
            "--diff",
            "--vault-password-file",
            str(tmp_path / "vault-password"),
            "--extra-vars",
            f"@{vars_file}",
        )
        assert result.returncode == 0, result.stdout[-3000:]
        # The vault's value reached the broker: the run did use it.
        amqp_connection(container_address(host), "monitoring", rotated, "celery").close()
        assert leaked(result.stdout + result.stderr, secret_values) == []
    finally:
        with host.sudo():
            host.check_output(f"rabbitmqctl change_password monitoring '{MONITORING_PASSWORD}'")


def test_a_vault_that_cannot_be_opened_stops_before_any_task(
    host: testinfra.host.Host, tmp_path: Path, scenario_inventory: Path
) -> None:
    vars_file = vault_file(tmp_path, "the-right-password", {"rabbitmq_app_password": "never-used"})
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    result = run_playbook(
        SITE, scenario_inventory, "--vault-password-file", str(wrong), "--extra-vars", f"@{vars_file}"
    )
    assert result.returncode != 0
    assert "Decryption failed" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "TASK [" not in result.stdout, result.stdout


def test_an_unreachable_broker_stops_the_run_before_any_change(
    host: testinfra.host.Host, tmp_path: Path, scenario_inventory: Path
) -> None:
    # The third broker's address leads nowhere (TEST-NET-1), as when a host is down at the start.
    gone = tmp_path / "gone.yml"
    gone.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "hosts": {
                        "rmq-trixie-3": {
                            "ansible_connection": "ssh",
                            "ansible_host": "192.0.2.1",
                            "ansible_ssh_common_args": "-o ConnectTimeout=3 -o StrictHostKeyChecking=no",
                        }
                    }
                }
            }
        )
    )
    before = config_checksums(host)
    result = run_playbook(SITE, scenario_inventory, "--inventory", str(gone))
    assert "UNREACHABLE" in result.stdout, result.stdout
    assert_failed_before_any_change(result, "The role needs the host names (facts) of every host in 'rabbitmq'")
    # The run stopped at the broker tier: the proxies and workers were not touched either.
    assert "PLAY [HAProxy AMQP proxy]" not in result.stdout
    assert config_checksums(host) == before


@pytest.mark.parametrize("missing", ["rabbitmq", "haproxy", "celery_workers"])
def test_an_inventory_without_a_tier_is_refused(
    host: testinfra.host.Host, tmp_path: Path, missing: str, scenario_inventory: Path
) -> None:
    """A tier's group missing or empty: refused by name before any host is contacted."""
    listed = run_ansible("ansible-inventory", "--inventory", str(scenario_inventory), "--list")
    assert listed.returncode == 0, listed.stderr
    inventory = json.loads(listed.stdout)
    hosts = {
        name: {}
        for group in ("rabbitmq", "haproxy", "celery_workers")
        if group != missing
        for name in inventory[group]["hosts"]
    }
    children = {
        group: {"hosts": {name: {} for name in inventory[group]["hosts"]}}
        for group in ("rabbitmq", "haproxy", "celery_workers")
        if group != missing
    }
    if missing != "celery_workers":  # the others are present but empty
        children[missing] = {"hosts": {}}
    broken = tmp_path / "inventory.yml"
    broken.write_text(
        yaml.safe_dump(
            {"all": {"hosts": hosts, "children": children, "vars": {"ansible_connection": "community.docker.docker"}}}
        )
    )
    before = config_checksums(host)
    result = run_playbook(SITE, broken)
    assert_failed_before_any_change(result, f"Inventory group '{missing}'")
    assert "Gathering Facts" not in result.stdout
    assert config_checksums(host) == before


def test_the_example_inventorys_published_secrets_are_refused(
    host: testinfra.host.Host, tmp_path: Path, scenario_inventory: Path
) -> None:
    """A copy of inventories/example on a real fleet: its vault opens with the documented key, so its secrets
    are everyone's. The roles refuse them before any change, naming the variables and never the values."""
    key = tmp_path / "example-key"
    key.write_text("example-vault-key")  # documented in inventories/example/README.md
    example = PROJECT_DIR / "inventories" / "example" / "group_vars" / "all"
    published = yaml.safe_load(run_ansible("ansible-vault", "view", "--vault-password-file", str(key),
                                           str(example / "vault.yml")).stdout)  # fmt: skip
    before = config_checksums(host)
    # The example's vars.yml names the vault's values the same way.
    names = tmp_path / "secrets.yml"
    names.write_text(yaml.safe_dump({name.removeprefix("vault_"): f"{{{{ {name} }}}}" for name in published}))
    result = run_playbook(
        SITE, scenario_inventory, "--vault-password-file", str(key),
        "--extra-vars", f"@{example / 'vault.yml'}", "--extra-vars", f"@{names}",
    )  # fmt: skip
    assert_failed_before_any_change(
        result,
        "rabbitmq_app_password, rabbitmq_monitoring_password, rabbitmq_erlang_cookie are values this repository "
        "publishes",
    )
    assert leaked(result.stdout + result.stderr, published) == []
    assert config_checksums(host) == before


def test_a_pool_name_that_would_break_supervisors_file_is_refused(
    host: testinfra.host.Host, scenario_inventory: Path
) -> None:
    """A pool name becomes `[program:celery-NAME]`, its queues the worker's `--queues a,b`: a bracket, a line
    break or a comma would write another program or another queue list than the one meant."""
    bad = [{"name": "default]\n[program:other", "queues": ["celery", "a,b"], "concurrency": 2, "numprocs": 1}]
    before = config_checksums(host)
    result = run_playbook(
        PROJECT_DIR / "playbooks" / "celery_workers.yml", scenario_inventory,
        "--extra-vars", json.dumps({"celery_worker_pools": bad}),
    )  # fmt: skip
    # (The name's line break is escaped in Ansible's JSON output; the rest of the message is not.)
    assert_failed_before_any_change(result, "is not a valid name (lower-case letters, digits, '_' and '-'")
    assert_failed_before_any_change(result, "celery_worker_pools[0].queues[1]: 'a,b' is not a valid name")
    assert config_checksums(host) == before
