"""The checkout's own files the tests read: a role's defaults, a scenario's group_vars and inventory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]


def scenario_group_vars(scenario: str) -> dict[str, dict[str, Any]]:
    """The inventory group_vars a scenario's molecule.yml gives its hosts."""
    config = yaml.safe_load((PROJECT_DIR / "molecule" / scenario / "molecule.yml").read_text())
    return config["provisioner"]["inventory"]["group_vars"]


def role_defaults(role: str) -> dict[str, Any]:
    """A role's defaults/main.yml."""
    return yaml.safe_load((PROJECT_DIR / "roles" / role / "defaults" / "main.yml").read_text())


def scenario_inventory() -> Path:
    """The inventory Molecule wrote for the scenario under test (a directory, as users pass one)."""
    return Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
