"""Check mode on hosts with nothing installed: refused at the start, saying why, before any change.

The cheap place for it: these hosts are bare images. site.yml stops at the
broker tier (a play whose hosts all failed ends the run), so each tier's
playbook is run too.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import testinfra.host
import yaml
from fleetlib.playbooks import assert_failed_before_any_change, run_playbook
from fleetlib.project import PROJECT_DIR

testinfra_hosts = ["ansible://testhost-trixie"]

BROKER, PROXY = "testhost-trixie", "testhost-bookworm"


@pytest.mark.parametrize(
    ("playbook", "refusal"),
    [
        ("site.yml", f"rabbitmq-server is not installed on {BROKER}"),
        ("haproxy.yml", f"haproxy is not installed on {PROXY}"),
        ("celery_workers.yml", f"supervisor, python3-venv are not installed on {PROXY}"),
    ],
)
def test_check_mode_refuses_an_unconverged_fleet(
    host: testinfra.host.Host, tmp_path: Path, playbook: str, refusal: str
) -> None:
    # One broker (classic queues: quorum queues need three) and one host for the other tiers.
    tiers = tmp_path / "tiers.yml"
    tiers.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "rabbitmq": {"hosts": {BROKER: {}}},
                        "haproxy": {"hosts": {PROXY: {}}},
                        "celery_workers": {"hosts": {PROXY: {}}},
                    },
                    "vars": {
                        "rabbitmq_default_queue_type": "classic",
                        "rabbitmq_app_password": "app-secret-for-tests",
                        "rabbitmq_monitoring_password": "monitoring-secret-for-tests",
                        "celery_worker_broker_password": "app-secret-for-tests",
                    },
                }
            }
        )
    )
    scenario_inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    result = run_playbook(
        PROJECT_DIR / "playbooks" / playbook, scenario_inventory, "--inventory", str(tiers), "--check", "--diff"
    )
    assert_failed_before_any_change(result, f"check mode needs a converged fleet: {refusal}")
    assert "Run the playbook without --check first." in " ".join(result.stdout.split())
    assert host.run("dpkg-query --show rabbitmq-server").rc != 0
