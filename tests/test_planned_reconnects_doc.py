"""The docs' numbers for planned reconnects without their protection quote
molecule/failover/results/planned-reconnects.json."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DATA = json.loads((PROJECT_DIR / "molecule" / "failover" / "results" / "planned-reconnects.json").read_text())
DOCS = PROJECT_DIR / "docs"


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_rolling_restart_without_the_handover_and_without_the_drain() -> None:
    doc = flat((DOCS / "maintenance.md").read_text())
    off = DATA["handover off"]["rolling-restart"]["long_tasks"]
    assert f"terminated {off['thrown_away']} long tasks, {off['seconds_repeated']} s of work repeated" in doc
    bare = DATA["neither handover nor drain"]["rolling-restart"]
    cut = [turn["connections_cut_by_stop"] for turn in bare["nodes"]]
    assert f"({', '.join(map(str, cut[:-1]))} and {cut[-1]} connections)" in doc
    assert f"and {bare['long_tasks']['thrown_away']} long tasks were terminated" in doc


def test_the_proxys_maintenance_without_the_handover() -> None:
    doc = flat((DOCS / "proxies.md").read_text())
    off = DATA["handover off"]["maintenance"]["long_tasks"]
    assert (
        f"terminated {off['thrown_away']} long tasks and ran {off['completed_twice']} twice, "
        f"{off['seconds_repeated']} s of work repeated"
    ) in doc
