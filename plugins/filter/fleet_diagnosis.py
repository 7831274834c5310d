"""Filters of playbooks/diagnose.yml: verdicts, the fleet table, remediation targets, a node_exporter textfile.

The logic lives in plugins/module_utils/diagnosis.py, shared with the
celery_worker_probe module that gathers the worker side on the hosts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

try:  # As Ansible loads it, a plugin of the collection.
    from ansible_collections.celery_fleet.fleet.plugins.module_utils import diagnosis
except ImportError:  # The unit tests import it from plugins/module_utils.
    import diagnosis  # type: ignore[no-redef]


def diagnosis_rows(
    probes: Mapping[str, Any], brokers: Mapping[str, Any] | None, sessions: Sequence[Any], thresholds: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return diagnosis.diagnose(probes, brokers, sessions, thresholds)


def diagnosis_remediation(
    rows: Sequence[Mapping[str, Any]], host: str, verdicts: Sequence[str], leak_within_s: int
) -> list[str]:
    return diagnosis.remediation_targets(rows, host, verdicts, int(leak_within_s))


def diagnosis_vhost_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A `rabbitmqctl ... --vhost V --formatter json` loop result -> its rows, each with its vhost (item.0)."""
    return [{**row, "vhost": result["item"][0]} for row in json.loads(result["stdout"])]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "diagnosis_rows": diagnosis_rows,
            "diagnosis_table": diagnosis.table,
            "diagnosis_remediation": diagnosis_remediation,
            "diagnosis_textfile": diagnosis.textfile,
            "diagnosis_vhost_rows": diagnosis_vhost_rows,
        }
