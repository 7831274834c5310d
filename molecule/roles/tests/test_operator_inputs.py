"""An operator's run of site.yml: a vault, an unreachable broker, missing tiers, published secrets, bad names.

Each case runs the real playbook against this scenario's converged stack, the way
`ansible-playbook -i <inventory> playbooks/site.yml` runs against a fleet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import testinfra.host
import yaml
from fleetlib.hosts import container_address, get
from fleetlib.playbooks import assert_failed_before_any_change, run_ansible, run_playbook
from fleetlib.project import PROJECT_DIR
from fleetlib.vaults import leaked, vault_file

# One host runs these: each case is a whole-fleet playbook run.
testinfra_hosts = ["ansible://rmq-trixie-1"]

SITE = PROJECT_DIR / "playbooks" / "site.yml"
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


def test_a_vault_that_cannot_be_opened_stops_before_any_task(
    host: testinfra.host.Host, tmp_path: Path, scenario_inventory: Path
) -> None:
    vars_file = vault_file(tmp_path, "the-right-password", {"rabbitmq_app_password": "never-used"}).vars_file
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
    # Nothing answers SSH on the third broker, as when a host is down at the start: its SSH port leads nowhere.
    # (Its address stays: the scenario's host_vars files outrank an inventory file's host variables.)
    gone = tmp_path / "gone.yml"
    gone.write_text(yaml.safe_dump({"all": {"hosts": {"rmq-trixie-3": {"ansible_port": 9}}}}))
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


@pytest.mark.parametrize("case", ["not an address", "a proxy's own"])
def test_a_virtual_address_that_would_take_the_wrong_address_is_refused(
    host: testinfra.host.Host, scenario_inventory: Path, case: str
) -> None:
    """keepalived announces the virtual address on the segment: one that is not an address, or that a proxy
    already has, is refused before keepalived is installed or any file changes."""
    address = "10.0.0.300" if case == "not an address" else container_address(get(host, "haproxy-trixie"))
    before = config_checksums(host)
    extra = f"haproxy_virtual_address={address}"
    result = run_playbook(PROJECT_DIR / "playbooks" / "haproxy.yml", scenario_inventory, "--extra-vars", extra)
    expected = "is not an IPv4 address" if case == "not an address" else "is the own address of a proxy"
    assert_failed_before_any_change(result, f"haproxy_virtual_address {address} {expected}")
    assert config_checksums(host) == before
