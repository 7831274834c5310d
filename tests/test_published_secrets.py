"""The secrets this repository publishes are all recognised, and nothing else is."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import yaml
from published_secrets import PUBLISHED_SHA256, published_secret_names

PROJECT_DIR = Path(__file__).resolve().parent.parent
EXAMPLE_VAULT_KEY = "example-vault-key"  # documented in inventories/example/README.md


def example_vault(tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "key"
    key.write_text(EXAMPLE_VAULT_KEY)
    vault = PROJECT_DIR / "inventories" / "example" / "group_vars" / "all" / "vault.yml"
    opened = subprocess.run(
        ["ansible-vault", "view", "--vault-password-file", str(key), str(vault)],
        capture_output=True,
        text=True,
        check=True,
    )
    return yaml.safe_load(opened.stdout)


def lab_secrets() -> dict[str, str]:
    group_vars = PROJECT_DIR / "inventories" / "lab" / "group_vars"
    found: dict[str, str] = {}
    for path in group_vars.glob("*.yml"):
        found |= {k: v for k, v in yaml.safe_load(path.read_text()).items() if "password" in k or "cookie" in k}
    return found


def test_every_published_secret_is_recognised(tmp_path: Path) -> None:
    published = example_vault(tmp_path) | {f"lab {name}": value for name, value in lab_secrets().items()}
    assert len(published) >= 5
    assert published_secret_names(published) == list(published)


def test_the_list_holds_nothing_else(tmp_path: Path) -> None:
    # A digest for a value no inventory holds any more would refuse a value nobody publishes.
    values = [*example_vault(tmp_path).values(), *lab_secrets().values()]
    assert {hashlib.sha256(value.encode()).hexdigest() for value in values} == PUBLISHED_SHA256


def test_other_values_and_types_pass() -> None:
    assert published_secret_names({"a": "a-password-of-my-own", "b": "", "c": None, "d": 5}) == []
