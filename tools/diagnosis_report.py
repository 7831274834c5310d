"""The diagnosis report the docs show: the failover scenario's planted fleet, as playbooks/diagnose.yml printed it.

molecule/failover/tests/test_diagnose.py runs the playbook on a fleet with one frozen worker (the control, its
flow cut), one leaking worker (the anchor, running the leak task) and two healthy ones, and keeps the report of
that run in .cache/diagnosis/planted.json.

    python tools/diagnosis_report.py            # the latest report's table, as the docs would show it
    python tools/diagnosis_report.py --adopt    # copy it to molecule/failover/results/diagnosis.json and the docs

tests/test_generated_docs.py checks that docs/diagnosis.md shows the committed report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from generated_blocks import OneBlockTool

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR / "plugins" / "module_utils"))
from diagnosis import table  # noqa: E402

RESULTS = PROJECT_DIR / ".cache" / "diagnosis" / "planted.json"
REFERENCE = PROJECT_DIR / "molecule" / "failover" / "results" / "diagnosis.json"
DOC = PROJECT_DIR / "docs" / "diagnosis.md"
BEGIN, END = "<!-- diagnosis-report:begin -->", "<!-- diagnosis-report:end -->"


def flagged_lines(report: dict[str, Any]) -> list[str]:
    """Each flagged process with its evidence and what could not be seen, as the report's JSON has them."""
    lines = []
    for row in report["rows"]:
        if row["verdict"] == "healthy":
            continue
        lines.append(f"- **{row['host']}** `{row['program']}` pid {row['pid']} ({row['role']}): **{row['verdict']}**")
        lines += [f"  - {item}" for item in row["evidence"]]
        lines += [f"  - not seen: {item}" for item in row["unseen"]]
    return lines


def block(report: dict[str, Any]) -> str:
    thresholds = ", ".join(f"`{name}` {value}" for name, value in report["thresholds"].items())
    return "\n".join([
        BEGIN,
        f"Window {report['window_s']} s; thresholds: {thresholds}.",
        "",
        "```text",
        *table(report["rows"]),
        "```",
        "",
        *flagged_lines(report),
        END,
    ])  # fmt: skip


TOOL = OneBlockTool(RESULTS, REFERENCE, DOC, BEGIN, END, block, "run `make molecule SCENARIOS=failover` first")
generated = TOOL.generated


def main(argv: list[str] | None = None) -> int:
    return TOOL.main(argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
