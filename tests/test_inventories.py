"""The shipped inventories parse, name the roles' groups, and the example's vault opens with its documented key."""

import json
from pathlib import Path

import pytest
from fleetlib.playbooks import run_ansible
from fleetlib.project import PROJECT_DIR

EXAMPLE_VAULT_KEY = "example-vault-key"  # documented in inventories/example/README.md


def inventory(name: str, *extra: str) -> dict:
    result = run_ansible("ansible-inventory", "--inventory", f"inventories/{name}", "--list", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("name", ["lab", "example"])
def test_inventory_has_every_tier(name: str, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(EXAMPLE_VAULT_KEY)
    data = inventory(name, "--vault-password-file", str(key))
    rabbitmq = data["rabbitmq"]["hosts"]
    assert len(rabbitmq) >= 3
    assert len(rabbitmq) % 2 == 1
    assert data["haproxy"]["hosts"]
    assert data["celery_workers"]["hosts"]


def test_example_secrets_are_vaulted_and_open_with_the_documented_key(tmp_path: Path) -> None:
    vault = PROJECT_DIR / "inventories" / "example" / "group_vars" / "all" / "vault.yml"
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")
    key = tmp_path / "key"
    key.write_text(EXAMPLE_VAULT_KEY)
    host_vars = inventory("example", "--vault-password-file", str(key))["_meta"]["hostvars"]
    worker = host_vars["worker-01.example.internal"]
    assert worker["vault_rabbitmq_app_password"] == "example-app-password"
