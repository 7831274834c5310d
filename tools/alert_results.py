"""The live alert tests' timings the docs quote: each real fault, the alerts it fired, how soon, and how soon they
resolved after the heal, against their bounds.

molecule/failover/tests/test_alerts.py (a broker blackholed) and test_diagnose.py (the planted frozen and leaking
workers) watch Alertmanager and keep their outcomes in .cache/alerts/results.json.

    python tools/alert_results.py            # the latest results, as the docs would show them
    python tools/alert_results.py --adopt    # copy them to molecule/failover/results/alerts.json and the docs

tests/test_generated_docs.py checks that docs/monitoring.md shows the committed results.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from generated_blocks import OneBlockTool

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / ".cache" / "alerts" / "results.json"
REFERENCE = PROJECT_DIR / "molecule" / "failover" / "results" / "alerts.json"
DOC = PROJECT_DIR / "docs" / "monitoring.md"
BEGIN, END = "<!-- alert-results:begin -->", "<!-- alert-results:end -->"
FAULTS = {
    "blackhole": "broker fo-rabbitmq-3 blackholed, then the network heals",
    "planted": "the control's flow cut (frozen) and the anchor leaking, then remediation",
}


def seconds(value: float | None, bound: float) -> str:
    return f"{value} s (bound {bound} s)" if value is not None else f"never (bound {bound} s)"


def block(results: dict[str, Any]) -> str:
    lines = [BEGIN, "| fault | alert | labels | fired after | resolved after the heal |", "|---|---|---|---|---|"]
    for fault, run in sorted(results.items()):
        for outcome in run["outcomes"]:
            labels = ", ".join(f"{key}={value}" for key, value in sorted(outcome["labels"].items()))
            lines.append(
                f"| {FAULTS.get(fault, fault)} | {outcome['alert']} | {labels} | "
                f"{seconds(outcome['fired_after_s'], outcome['fire_bound_s'])} | "
                f"{seconds(outcome['resolved_after_s'], outcome['resolve_bound_s'])} |"
            )
    return "\n".join([*lines, END])


TOOL = OneBlockTool(RESULTS, REFERENCE, DOC, BEGIN, END, block, "run `make molecule SCENARIOS=failover` first")
generated = TOOL.generated


def main(argv: list[str] | None = None) -> int:
    return TOOL.main(argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
