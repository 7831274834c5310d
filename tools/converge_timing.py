"""Time site.yml on the container lab with N worker hosts: the first converge and the second (changed=0) run.

    python tools/converge_timing.py --workers 10

Brings the lab up with inventories/lab plus N-2 extra workers (an overlay
inventory written to .cache/), runs playbooks/site.yml twice, removes the lab
and writes the timings to .cache/converge-timing/<N>-workers.json. Run it on
an otherwise idle machine: every container shares its cores.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
OUT_DIR = PROJECT_DIR / ".cache" / "converge-timing"
LAB = PROJECT_DIR / "inventories" / "lab"
# The lab inventory's workers sit at .31 and .32 of its subnet; extra ones follow.
FIRST_EXTRA = 3


def overlay(workers: int, subnet_prefix: str = "10.213.1.") -> dict[str, object]:
    """Worker hosts lab-worker-3..N, addressed after the lab's own two."""
    extra = {
        f"lab-worker-{n}": {"ansible_host": str(ipaddress.ip_address(f"{subnet_prefix}{30 + n}"))}
        for n in range(FIRST_EXTRA, workers + 1)
    }
    return {"lab": {"children": {"celery_workers": {"hosts": extra}}}}


def changed_total(output: str) -> int:
    return sum(int(count) for count in re.findall(r"changed=(\d+)", output))


def playbook(inventories: list[Path], playbook_path: str, *args: str) -> tuple[float, str]:
    command = ["ansible-playbook"]
    for inventory in inventories:
        command += ["--inventory", str(inventory)]
    start = time.monotonic()
    result = subprocess.run(
        [*command, playbook_path, *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    elapsed = round(time.monotonic() - start, 1)
    if result.returncode != 0:
        sys.exit(f"{playbook_path} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return elapsed, result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker hosts (at least 2, the lab's own)")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be at least 2")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    extra = OUT_DIR / f"{args.workers}-workers-inventory.json"
    extra.write_text(json.dumps(overlay(args.workers)))
    inventories = [LAB, extra]
    try:
        playbook(inventories, "playbooks/lab.yml")
        first, first_out = playbook(inventories, "playbooks/site.yml")
        second, second_out = playbook(inventories, "playbooks/site.yml")
    finally:
        playbook(inventories, "playbooks/lab.yml", "--extra-vars", "lab_state=absent")
    result = {
        "workers": args.workers,
        "first_run_s": first,
        "second_run_s": second,
        "second_run_changed": changed_total(second_out),
        "first_run_changed": changed_total(first_out),
    }
    (OUT_DIR / f"{args.workers}-workers.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
