"""Run one fault on a running fleet (the lab by default) and show what it cost: a timeline, then a PNG.

    make drill FAULT=blackhole                       # on `make lab`: a broker vanishes from the network
    make drill FAULT=proxy-vanishes HOLD=60          # the first proxy vanishes for 60 s
    python tools/drill.py --fault crash --target lab-rabbitmq-2

Tasks are published through the proxies (10 a second) while the fault is injected on its target, held, and healed
the way production heals (the network comes back, systemd restarts what died). Then the drill waits until every
proxy shows every broker UP and every alert it fired has resolved, and prints when each worker lost its
connection, reconnected and completed tasks again, the longest stall, tasks published / completed / lost / run
twice, and every alert with when it fired and resolved. The record and the picture go to .cache/drill/.

    python tools/drill.py --adopt .cache/drill/<run>.json   # make that run the docs' example (docs/drill.md)

The measures are the failover tests' own (molecule/fleetlib/drill.py). The drill touches only the inventory's own
hosts, over SSH as its playbooks do. It reads the inventory's plain variables: a vaulted broker password is not
supported (the lab's are plain).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The tests' library (fleetlib) and the reference app's configuration (the publisher is one of the reference app's).
sys.path[:0] = [str(PROJECT_DIR / "molecule"), str(PROJECT_DIR / "reference_app")]
from ansible.errors import AnsibleError  # noqa: E402
from fleetlib.drill import Drill, DrillPlan, DrillStack, timeline  # noqa: E402
from fleetlib.drill_plot import draw, png_digest, record_digest  # noqa: E402
from fleetlib.faults import PROXY_HOST_FAULTS, broker_faults, fault_commands  # noqa: E402
from fleetlib.inventory import CONNECTION_VARS, InventoryHosts, inventory_hosts  # noqa: E402
from fleetlib.project import role_defaults  # noqa: E402
from fleetlib.publishing import fleet_client  # noqa: E402
from fleetlib.tls import fleet_ca_dir, fleet_client_tls  # noqa: E402
from generated_blocks import OneBlockTool  # noqa: E402

OUT_DIR = PROJECT_DIR / ".cache" / "drill"
REFERENCE = PROJECT_DIR / "docs" / "drill" / "blackhole.json"
PICTURE = PROJECT_DIR / "docs" / "drill" / "blackhole.png"
DOC = PROJECT_DIR / "docs" / "drill.md"
BEGIN, END = "<!-- drill-timeline:begin -->", "<!-- drill-timeline:end -->"
BROKER_FAULTS = tuple(broker_faults(""))
FAULTS = (*BROKER_FAULTS, *PROXY_HOST_FAULTS)
# The variables the drill reads, rendered from the inventory (a role's default when the inventory has none).
VARIABLES = ("celery_worker_broker_password", "celery_worker_broker_endpoints", "rabbitmq_app_vhost",
             "celery_worker_home", "celery_worker_log_dir", "monitoring_prometheus_port",
             "monitoring_alertmanager_port")  # fmt: skip


class Refused(ValueError):
    """A value the drill will not run with; says which, and what to give instead."""


def seconds(name: str, value: str, default: float) -> float:
    if value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 1 <= number <= 3600:
        raise Refused(f"{name}={value!r} is not a number of seconds: give one from 1 to 3600, e.g. {name}={default:g}")
    return number


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # `make drill FAULT=... TARGET=... HOLD=...` hands them over in the environment: no shell quoting to get wrong.
    env = os.environ.get
    parser.add_argument("--fault", default=env("DRILL_FAULT", ""), help=f"one of: {', '.join(FAULTS)}")
    parser.add_argument(
        "--target",
        default=env("DRILL_TARGET", ""),
        help="the host it hits (default: the first broker, or the first proxy)",
    )
    parser.add_argument("--hold", default=env("DRILL_HOLD", ""),
                        help="seconds the fault lasts (default 120: long enough for the lab's alerts)")  # fmt: skip
    parser.add_argument("--inventory", default=str(PROJECT_DIR / "inventories" / "lab"))
    parser.add_argument("--adopt", default="", help="a drill record (.json) to make the docs' example")
    return parser.parse_args(argv)


DEFAULTS = {**role_defaults("rabbitmq"), **role_defaults("celery_worker"), **role_defaults("monitoring")}


def variables(hosts: InventoryHosts, name: str) -> dict[str, Any]:
    return {key: hosts.variables[name].get(key, DEFAULTS.get(key)) for key in VARIABLES}


def stack(inventory: Path, hosts: InventoryHosts) -> DrillStack:
    """The fleet of the inventory's groups rabbitmq, haproxy, celery_workers and monitoring."""
    ca = fleet_ca_dir(inventory.resolve()) / "ca.crt"
    if not ca.exists():
        raise Refused(f"no fleet CA at {ca}: is the fleet deployed? `make lab` deploys the lab")
    brokers, proxies = hosts.group("rabbitmq"), hosts.group("haproxy")
    workers, monitoring = hosts.group("celery_workers"), hosts.group("monitoring")[0]
    worker = variables(hosts, workers[0])
    address = lambda name: hosts.variables[name].get("ansible_host", name)  # noqa: E731
    endpoints = worker["celery_worker_broker_endpoints"] or [f"{address(name)}:5671" for name in proxies]
    app = fleet_client(endpoints, worker["celery_worker_broker_password"], worker["rabbitmq_app_vhost"], "celery",
                       fleet_client_tls(inventory.resolve()))  # fmt: skip
    watcher = variables(hosts, monitoring)
    return DrillStack(
        brokers={name: hosts.host(name) for name in brokers},
        proxies={name: hosts.host(name) for name in proxies},
        workers={name: hosts.host(name) for name in workers},
        app=app,
        prometheus_url=f"http://{address(monitoring)}:{watcher['monitoring_prometheus_port']}",
        alertmanager_url=f"http://{address(monitoring)}:{watcher['monitoring_alertmanager_port']}",
        completed_log=f"{worker['celery_worker_home']}/completed.log",
        worker_log=f"{worker['celery_worker_log_dir']}/celery-default-00.log",
    )


def check_fault(fault: str) -> str:
    if fault not in FAULTS:
        raise Refused(f"FAULT={fault!r} is not a drill: give one of {', '.join(FAULTS)}, e.g. FAULT=blackhole")
    return fault


def plan(fault: str, target: str, hold_s: float, hosts: InventoryHosts) -> DrillPlan:
    """The fault (a checked name), its target (checked against the inventory) and its commands."""
    tier = hosts.group("rabbitmq") if fault in BROKER_FAULTS else hosts.group("haproxy")
    target = target or tier[0]
    if target not in tier:
        raise Refused(f"TARGET={target!r} is not a host {fault} can hit: give one of {', '.join(tier)}")
    # The other brokers by address, as iptables takes them.
    peers = ",".join(hosts.variables[name].get("ansible_host", name) for name in hosts.group("rabbitmq")
                     if name != target)  # fmt: skip
    inject, heal = fault_commands(fault, peers)
    return DrillPlan(fault, target, inject, heal, hold_s=hold_s)


def block(record: dict[str, Any]) -> str:
    return "\n".join([BEGIN, "```text", timeline(record), "```", END])


TOOL = OneBlockTool(REFERENCE, REFERENCE, DOC, BEGIN, END, block, "run `make drill FAULT=blackhole` first")
generated = TOOL.generated


def adopt(run: Path) -> None:
    """The run's record and picture become the docs' example."""
    record = json.loads(run.read_text())
    picture = run.with_suffix(".png")
    if png_digest(picture) != record_digest(record):
        raise Refused(f"{picture} was not drawn from {run}: run the drill again")
    REFERENCE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(run, REFERENCE)
    shutil.copyfile(picture, PICTURE)
    TOOL.adopt()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        if args.adopt:
            adopt(Path(args.adopt))
            return 0
        # Both refused before the inventory is read.
        fault, hold_s = check_fault(args.fault), seconds("HOLD", args.hold, 120.0)
        inventory = Path(args.inventory)
        if not inventory.exists():
            raise Refused(f"--inventory {inventory} does not exist: start the lab with `make lab`, or name yours")
        try:
            hosts = inventory_hosts(inventory, CONNECTION_VARS + VARIABLES)
        except AnsibleError as error:  # a vaulted value, an undefined variable: said without the value
            raise Refused(f"the drill could not read {inventory}'s variables ({error.message}): it reads plain "
                          "variables only, as the lab's are") from None  # fmt: skip
        drill_plan = plan(fault, args.target, hold_s, hosts)
        fleet = stack(inventory, hosts)
    except ValueError as refusal:  # Refused, or an inventory without one of the groups
        print(f"drill: {refusal}", file=sys.stderr)
        return 2
    return run(Drill(fleet, drill_plan, progress=lambda line: print(f"drill: {line}", flush=True)))


def run(drill: Drill) -> int:
    record = drill.run()
    stem = OUT_DIR / f"{record['fault']}-{record['recorded'].replace(':', '')}"
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    draw(record, stem.with_suffix(".png"))
    print(timeline(record))
    print(f"Record: {stem.with_suffix('.json')}\nPicture: {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
