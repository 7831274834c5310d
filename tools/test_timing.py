"""How long `make test` takes from a fresh clone, and where the time goes: the docs' copy of measured runs.

    python tools/test_timing.py                      # print the reference runs' tables
    python tools/test_timing.py --adopt /path/clone  # add that clone's run to the reference, rewrite the docs

`.ci/run` writes .cache/make-test.json (the whole `make test`, in seconds, and
the commit) and `make molecule` writes .cache/molecule-timing.json (each
scenario's steps, verify's tests). `--adopt` copies both from a clone that
ran `.ci/run` into tools/reference/make-test-timing.json, keeping the
QUOTED latest runs, and rewrites the per-step table in docs/measurements.md
and the headline in README.md; tests/test_test_timing.py checks they agree.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from generated_blocks import rewrite_blocks
from run_scenarios import CaseTiming, module_seconds

PROJECT_DIR = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT_DIR / "tools" / "reference" / "make-test-timing.json"
DOC = PROJECT_DIR / "docs" / "measurements.md"
README = PROJECT_DIR / "README.md"
BEGIN, END = "<!-- test-timing:begin -->", "<!-- test-timing:end -->"
HEADLINE_BEGIN, HEADLINE_END = "<!-- test-timing-headline:begin -->", "<!-- test-timing-headline:end -->"
# The runs the docs quote: the latest ones adopted.
QUOTED = 2
# The project's budget for the suite on 2 cores, and CI's hard cap (past it, nothing lands).
BUDGET_S = 1800
CI_CAP_S = 5400

Run = dict[str, Any]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def step_rows(runs: list[Run]) -> list[str]:
    """One row per scenario step (verify's test modules under it), one column per run."""
    keys: list[tuple[str, str]] = []
    seconds: list[dict[tuple[str, str], float]] = []
    for run in runs:
        found: dict[tuple[str, str], float] = {}
        for scenario in run["molecule"]["scenarios"]:
            name = scenario["scenario"]
            for step in scenario["steps"]:
                # destroy runs first and last: the second keeps its own row.
                key = (name, step["step"] if (name, step["step"]) not in found else f"{step['step']} (end)")
                found[key] = step["seconds"]
                tests = tuple(CaseTiming(**test) for test in step.get("tests", []))
                for module, module_total in module_seconds(tests).items():
                    found[(name, f"&nbsp;&nbsp;{module.removeprefix('tests/')}")] = module_total
            found[(name, "**total**")] = scenario["seconds"]
        keys += [key for key in found if key not in keys]
        seconds.append(found)
    header = "| scenario | step | " + " | ".join(f"run {n} (s)" for n in range(1, len(runs) + 1)) + " |"
    rows = [header, "|---|---|" + "---:|" * len(runs)]
    for scenario, step in keys:
        cells = " | ".join(f"{found[(scenario, step)]:.0f}" if (scenario, step) in found else "-" for found in seconds)
        rows.append(f"| {scenario} | {step} | {cells} |")
    return rows


def machine_cell(machine: dict[str, Any] | None) -> str:
    """The machine's speed and load during a run (tools/machine_load.py); runs before it was recorded: "-"."""
    if not machine:
        return "-"
    before, after = machine["benchmark_s"]
    busy, stolen = machine["busy_pct"], machine["steal_pct"]
    return f"benchmark {before:.2f} / {after:.2f} s, CPU {busy:.0f}% busy, {stolen:.0f}% stolen"


def measurements_block(reference: dict[str, list[Run]]) -> str:
    runs = reference["runs"]
    lines = [
        "| run | commit | date | `make test` | Molecule's wall time | within the budget | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for number, run in enumerate(runs, 1):
        total, within = run["make_test_s"], "yes" if run["make_test_s"] <= BUDGET_S else "NO"
        lines.append(
            f"| {number} | `{run['commit'][:7]}` | {run['date']} | {total} s ({minutes(total)})"
            f" | {run['molecule']['wall_seconds']:.0f} s | {within} | {machine_cell(run.get('machine'))} |"
        )
    return "\n".join([BEGIN, *lines, "", *step_rows(runs), END])


# The README's table: Molecule's steps, in the order they run (destroy: both of them together), and "turn",
# the wait for another scenario's converge to end (tools/run_scenarios.py).
SUMMARY_STEPS = ("create", "prepare", "turn", "converge", "idempotence", "verify", "destroy")


def summary_rows(runs: list[Run]) -> list[str]:
    """One row per scenario, one column per step: each run's seconds, "run 1 / run 2"."""
    per_run: list[dict[str, dict[str, float]]] = []
    for run in runs:
        scenarios: dict[str, dict[str, float]] = {}
        for scenario in run["molecule"]["scenarios"]:
            steps = scenarios.setdefault(scenario["scenario"], {"total": scenario["seconds"]})
            for step in scenario["steps"]:
                steps[step["step"]] = steps.get(step["step"], 0.0) + step["seconds"]
        per_run.append(scenarios)
    names = list(dict.fromkeys(name for scenarios in per_run for name in scenarios))
    columns = [step for step in SUMMARY_STEPS if any(step in s.get(n, {}) for s in per_run for n in names)]
    rows = ["| scenario | " + " | ".join([*columns, "total"]) + " |", "|---|" + "---:|" * (len(columns) + 1)]
    for name in names:

        def cell(step: str, name: str = name) -> str:
            return " / ".join(f"{s[name][step]:.0f}" if step in s.get(name, {}) else "-" for s in per_run)

        rows.append(f"| {name} | " + " | ".join(cell(step) for step in [*columns, "total"]) + " |")
    return rows


def headline_block(reference: dict[str, list[Run]]) -> str:
    runs = reference["runs"]
    totals = " and ".join(f"{run['make_test_s']} s ({minutes(run['make_test_s'])})" for run in runs)
    line = (
        f"- `make test` from a fresh clone on 2 cores, all passing: {totals}; the project's budget is "
        f"{minutes(BUDGET_S)}. Seconds per Molecule step, run 1 / run 2 (scenarios run two at a time, their "
        "converges in turns); every test module timed: [docs/measurements.md](docs/measurements.md#test-time)."
    )
    return "\n".join([HEADLINE_BEGIN, line, "", *summary_rows(runs), HEADLINE_END])


def generated(reference: dict[str, list[Run]]) -> list[tuple[Path, str, str, str]]:
    """Every block quoted from the reference: the file, its begin and end markers, the block."""
    return [
        (DOC, BEGIN, END, measurements_block(reference)),
        (README, HEADLINE_BEGIN, HEADLINE_END, headline_block(reference)),
    ]


def run_from(clone: Path) -> Run:
    """The run a clone's `.ci/run` recorded."""
    make_test = json.loads((clone / ".cache" / "make-test.json").read_text())
    molecule = json.loads((clone / ".cache" / "molecule-timing.json").read_text())
    if make_test["result"] != "passed":
        raise SystemExit(f"{clone}: make test did not pass ({make_test['result']}); only passing runs are quoted")
    return {**make_test, "molecule": molecule}


def adopt(clone: Path) -> None:
    runs = json.loads(REFERENCE.read_text())["runs"] if REFERENCE.exists() else []
    reference = {"runs": [*runs, run_from(clone)][-QUOTED:]}
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(reference, indent=2) + "\n")
    rewrite_blocks(generated(reference))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adopt", type=Path, metavar="CLONE", help="a clone whose .ci/run has finished")
    args = parser.parse_args()
    if args.adopt:
        adopt(args.adopt)
    print(measurements_block(json.loads(REFERENCE.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
