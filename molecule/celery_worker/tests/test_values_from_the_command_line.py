"""The celery_worker role's int and bool variables from the command line: strings work as YAML, bad values are
refused.

The tests are fleetlib.command_line's; this names the scenario's hosts.
"""

from __future__ import annotations

from fleetlib.command_line import CommandLineValues, RoleInputs

WORKERS = ["cw-worker-trixie", "cw-worker-bookworm"]


class TestCeleryWorkerValuesFromTheCommandLine(CommandLineValues):
    role_inputs = RoleInputs(
        role="celery_worker",
        scenario="celery_worker",
        playbook="playbooks/celery_workers.yml",
        group="celery_workers",
        target=WORKERS[0],
        role_files=[
            "/etc/celery-fleet/app.json",
            "/etc/supervisor/supervisord.conf",
            "/etc/supervisor/conf.d/celery-default.conf",
            "/etc/sysctl.d/60-celery-worker.conf",
        ],
        node=WORKERS[1],
        node_groups=["celery_workers"],
        fact_hosts=WORKERS,
        alias_groups=["celery_workers"],
        other_groups={"haproxy": ["cw-haproxy"], "rabbitmq": ["cw-rabbitmq-1", "cw-rabbitmq-2", "cw-rabbitmq-3"]},
    )
