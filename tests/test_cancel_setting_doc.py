"""docs/celery_worker.md's table of the cancel setting quotes molecule/failover/results/cancel-setting.json."""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
DATA = PROJECT_DIR / "molecule" / "failover" / "results" / "cancel-setting.json"
DOC = PROJECT_DIR / "docs" / "celery_worker.md"
# The data's run names, as the table's first column words them.
ROWS = {
    "celery 5.6.3, cancel on (the reference app)": "| 5.6.3, `True` (the reference app) |",
    "celery 5.7.0, cancel off (Celery's default)": "| 5.7.0, `False` (Celery's default) |",
    "celery 5.7.0, cancel on": "| 5.7.0, `True` |",
}


def test_each_row_quotes_the_totals_of_its_run() -> None:
    runs = json.loads(DATA.read_text())["runs"]
    lines = DOC.read_text().splitlines()
    for name, start in ROWS.items():
        cases = runs[name].values()
        totals = (
            sum(case["thrown_away"] for case in cases),
            sum(case["completed_twice"] for case in cases),
            round(sum(case["seconds_repeated"] for case in cases), 2),
        )
        [row] = [line for line in lines if line.startswith(start)]
        assert row.startswith(f"{start} {totals[0]} | {totals[1]} | {totals[2]} s |"), (name, totals, row)
