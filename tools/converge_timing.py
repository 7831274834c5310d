"""Time site.yml on the container lab with N worker hosts: the first converge and the second (changed=0) run.

    python tools/converge_timing.py --workers 10
    python tools/converge_timing.py --workers 2 --connection docker

Brings the lab up with inventories/lab plus N-2 extra workers (an overlay
inventory written to .cache/), runs playbooks/site.yml once to converge it and
then --second-runs more times (changed=0 expected; their median is quoted, as
one run on a shared machine varies by a fifth), removes the lab and writes the
timings to .cache/converge-timing/<N>-workers.json. Run it on an otherwise
idle machine: every container shares its cores.

--connection docker reaches the same containers through the Docker API as
root instead of over SSH as `deploy` with sudo, for comparison, without
pipelining (as Molecule's Docker connection runs unless told otherwise): each
module is copied into the container and run with several `docker exec` calls.

The docs quote tools/reference/converge-timing.json, a committed copy of
such runs (the table in docs/measurements.md, a headline in README.md):
`--adopt` copies the latest results there and rewrites both, and
tests/test_converge_timing.py checks that they agree.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from generated_blocks import rewrite_blocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Ansible is started one way in this project, by the tests' library (molecule/fleetlib), tools included.
sys.path.insert(0, str(PROJECT_DIR / "molecule"))
from fleetlib.playbooks import ansible_env, run_playbook  # noqa: E402

OUT_DIR = PROJECT_DIR / ".cache" / "converge-timing"
REFERENCE = PROJECT_DIR / "tools" / "reference" / "converge-timing.json"
DOC = PROJECT_DIR / "docs" / "measurements.md"
README = PROJECT_DIR / "README.md"
BEGIN, END = "<!-- converge-timing:begin -->", "<!-- converge-timing:end -->"
HEADLINE_BEGIN, HEADLINE_END = "<!-- converge-headline:begin -->", "<!-- converge-headline:end -->"
# The runs the docs quote, in their order: (workers, connection).
QUOTED = [(2, "ssh"), (10, "ssh"), (2, "docker")]
CONNECTIONS = {"ssh": "SSH as `deploy`, sudo, pipelining", "docker": "Docker API as root, no pipelining"}
LAB = PROJECT_DIR / "inventories" / "lab"
# The lab inventory's workers sit at .31 and .32 of its subnet; extra ones follow.
FIRST_EXTRA = 3


# Host variables, which override the lab's group variables, for the Docker API.
DOCKER = {"ansible_connection": "community.docker.docker", "ansible_user": "root"}


def lab_hosts() -> dict[str, list[str]]:
    """The lab inventory's hosts by tier."""
    tiers = yaml.safe_load((LAB / "hosts.yml").read_text())["lab"]["children"]
    return {tier: list(group["hosts"]) for tier, group in tiers.items()}


def overlay(workers: int, connection: str = "ssh", subnet_prefix: str = "10.213.1.") -> dict[str, object]:
    """Worker hosts lab-worker-3..N, addressed after the lab's own two; every host on the Docker API if asked."""
    extra = {
        f"lab-worker-{n}": {"ansible_host": str(ipaddress.ip_address(f"{subnet_prefix}{30 + n}"))}
        for n in range(FIRST_EXTRA, workers + 1)
    }
    tiers = {tier: {"hosts": {name: {} for name in names}} for tier, names in lab_hosts().items()}
    tiers["celery_workers"]["hosts"].update(extra)
    if connection == "docker":
        for group in tiers.values():
            for name, host in group["hosts"].items():
                # Molecule's and the lab role's own way in: the container's name.
                host.update(DOCKER, ansible_docker_host=name)
    return {"lab": {"children": tiers}}


def run_name(workers: int, connection: str) -> str:
    return f"{workers}-workers" + ("-docker" if connection == "docker" else "")


def measurements_block(reference: dict[str, dict[str, Any]]) -> str:
    """docs/measurements.md's table of the quoted runs, between its markers."""
    rows = [
        "| fleet | connection | first run | second run (`changed=0`), median of 3 | share |",
        "|---|---|---|---|---|",
    ]
    for workers, connection in QUOTED:
        run = reference[run_name(workers, connection)]
        runs = ", ".join(str(seconds) for seconds in run["second_runs_s"])
        rows.append(
            f"| 3 brokers, 2 proxies, {workers} workers | {CONNECTIONS[connection]} | {run['first_run_s']} s "
            f"| {run['second_run_s']} s ({runs}) | {round(100 * run['second_run_share'])} % |"
        )
    first = {workers: reference[run_name(workers, "ssh")]["first_run_s"] for workers in (2, 10)}
    ratio = round(first[10] / first[2], 2)
    rows += ["", f"Ten workers took {ratio} times as long as two on the first run."]
    return "\n".join([BEGIN, *rows, END])


def headline_block(reference: dict[str, dict[str, Any]]) -> str:
    """The README's line on converge time, between its markers."""
    two, ten = reference[run_name(2, "ssh")], reference[run_name(10, "ssh")]
    line = (
        f"- `site.yml` on the lab (3 brokers, 2 proxies, 2 workers, over SSH): {two['first_run_s']} s to "
        f"converge, {two['second_run_s']} s for a second run that reports `changed=0`; with 10 workers "
        f"{ten['first_run_s']} s and {ten['second_run_s']} s."
    )
    return "\n".join([HEADLINE_BEGIN, line, HEADLINE_END])


def generated(reference: dict[str, dict[str, Any]]) -> list[tuple[Path, str, str, str]]:
    """Every block quoted from the reference: the file, its begin and end markers, the block."""
    return [
        (DOC, BEGIN, END, measurements_block(reference)),
        (README, HEADLINE_BEGIN, HEADLINE_END, headline_block(reference)),
    ]


def adopt() -> None:
    """Copy the latest result of each quoted run to the reference, its table to the docs, its headline to the README."""
    names = [run_name(*quoted) for quoted in QUOTED]
    reference = {name: json.loads((OUT_DIR / f"{name}.json").read_text()) for name in names}
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    REFERENCE.write_text(json.dumps(reference, indent=2) + "\n")
    rewrite_blocks(generated(reference))


def changed_total(output: str) -> int:
    return sum(int(count) for count in re.findall(r"changed=(\d+)", output))


def playbook(
    inventories: list[Path], playbook_path: str, *args: str, log: Path | None = None, pipelining: bool = True
) -> tuple[float, str]:
    """Run one playbook (as long as it takes); its whole output goes to `log` as well, if given."""
    start = time.monotonic()
    env = ansible_env(ANSIBLE_PIPELINING=str(pipelining))
    result = run_playbook(playbook_path, inventories, *args, env=env, timeout=None)
    elapsed = round(time.monotonic() - start, 1)
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        failed = [line for line in result.stdout.splitlines() if line.startswith(("fatal:", "failed:"))]
        sys.exit(f"{playbook_path} failed{f' (whole output: {log})' if log else ''}:\n" + "\n".join(failed)[-4000:])
    return elapsed, result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker hosts (at least 2, the lab's own)")
    parser.add_argument("--connection", choices=["ssh", "docker"], default="ssh", help="how Ansible reaches the hosts")
    parser.add_argument("--second-runs", type=int, default=3, help="runs after the first, to take the median of")
    parser.add_argument("--adopt", action="store_true", help="copy the latest results to the reference and the docs")
    args = parser.parse_args(argv)
    if args.adopt:
        adopt()
        return 0
    if args.workers < 2:
        parser.error("--workers must be at least 2")
    if args.second_runs < 1:
        parser.error("--second-runs must be at least 1")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    name = run_name(args.workers, args.connection)
    extra = OUT_DIR / f"{name}-inventory.json"
    extra.write_text(json.dumps(overlay(args.workers, args.connection)))
    inventories = [LAB, extra]
    try:
        playbook(inventories, "playbooks/lab.yml")
        pipelining = args.connection == "ssh"
        first, first_out = playbook(
            inventories, "playbooks/site.yml", log=OUT_DIR / f"{name}-run-1.log", pipelining=pipelining
        )
        again = [
            playbook(inventories, "playbooks/site.yml", log=OUT_DIR / f"{name}-run-{run}.log", pipelining=pipelining)
            for run in range(2, args.second_runs + 2)
        ]
    finally:
        playbook(inventories, "playbooks/lab.yml", "--extra-vars", "lab_state=absent")
    second = statistics.median(elapsed for elapsed, _ in again)
    result = {
        "workers": args.workers,
        "connection": args.connection,
        "first_run_s": first,
        "second_run_s": second,
        "second_runs_s": [elapsed for elapsed, _ in again],
        "second_run_share": round(second / first, 3),
        "second_run_changed": max(changed_total(output) for _, output in again),
        "first_run_changed": changed_total(first_out),
    }
    (OUT_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
