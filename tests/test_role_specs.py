"""Every role's defaults and its meta/argument_specs.yml name the same variables with the same defaults.

The specs are where Ansible checks types and choices, where the roles' first
task reads ranges, and what `make docs` turns into each README's table: a
default without a spec is unchecked and undocumented.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[1] / "roles"
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if (path / "defaults" / "main.yml").exists())


def defaults_and_specs(role: str) -> tuple[dict, dict]:
    defaults = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((ROLES_DIR / role / "meta" / "argument_specs.yml").read_text())
    return defaults, specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_a_spec_and_every_spec_a_default(role: str) -> None:
    defaults, specs = defaults_and_specs(role)
    assert sorted(set(defaults) - set(specs)) == [], "defaults without a spec"
    assert sorted(set(specs) - set(defaults)) == [], "specs without a default"


@pytest.mark.parametrize("role", ROLES)
def test_the_spec_gives_the_same_default(role: str) -> None:
    defaults, specs = defaults_and_specs(role)
    differ = {name: (specs[name].get("default"), value) for name, value in defaults.items()
              if name in specs and "default" in specs[name] and specs[name]["default"] != value}  # fmt: skip
    assert differ == {}


def test_the_rabbitmq_role_knows_the_proxies_admin_socket_where_the_haproxy_role_puts_it() -> None:
    """One fact in two roles' defaults (the rolling restart drains a node on the proxies through that socket)."""
    rabbitmq, _ = defaults_and_specs("rabbitmq")
    haproxy, _ = defaults_and_specs("haproxy")
    assert rabbitmq["rabbitmq_proxy_stats_socket"] == haproxy["haproxy_stats_socket"]
