"""The celery_worker role's int and bool variables from the command line: strings work as YAML, bad values are
refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import scenario_group_vars
from fleetlib import inputs

INVENTORY = Path(os.environ.get("MOLECULE_INVENTORY_FILE", "inventory")).parent
SCENARIO_VARS = scenario_group_vars("celery_worker")
WORKERS = ["cw-worker-trixie", "cw-worker-bookworm"]
ROLE_FILES = [
    "/etc/celery-fleet/app.json",
    "/etc/supervisor/supervisord.conf",
    "/etc/supervisor/conf.d/celery-default.conf",
    "/etc/sysctl.d/60-celery-worker.conf",
]


@pytest.fixture(scope="module")
def facts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workers' facts, gathered once: no run below gathers any."""
    cache = tmp_path_factory.mktemp("facts")
    inputs.fact_cache(INVENTORY, WORKERS, cache)
    return cache


def test_every_bad_int_or_bool_value_is_refused_before_any_change(facts: Path, tmp_path: Path) -> None:
    found = inputs.cases("celery_worker")
    before = inputs.checksums(WORKERS[0], ROLE_FILES)
    results = inputs.run_cases(
        "celery_worker",
        found,
        playbook_path="playbooks/celery_workers.yml",
        group="celery_workers",
        target=WORKERS[0],
        host_vars={
            "ansible_connection": "community.docker.docker",
            **SCENARIO_VARS["all"],
            **SCENARIO_VARS["celery_workers"],
        },
        groups={"haproxy": ["cw-haproxy"], "rabbitmq": ["cw-rabbitmq-1", "cw-rabbitmq-2", "cw-rabbitmq-3"]},
        cache=facts,
        workdir=tmp_path,
    )
    assert inputs.unrefused(found, results) == []
    assert inputs.checksums(WORKERS[0], ROLE_FILES) == before


@pytest.mark.parametrize("form", [inputs.as_strings, inputs.as_json], ids=["strings", "json"])
def test_values_on_the_command_line_work_as_yaml(facts: Path, form: inputs.Form) -> None:
    """Every int and bool variable at its converged value, as `-e name=value` strings or as JSON: no change."""
    values = inputs.effective_values("celery_worker", "celery_worker", ["celery_workers"])
    run = inputs.playbook("playbooks/celery_workers.yml", INVENTORY, facts, "--limit", WORKERS[1], *form(values))
    assert (run.returncode, run.changed()) == (0, {WORKERS[1]: 0}), run.changes()
