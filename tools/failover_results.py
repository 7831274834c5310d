"""The failover scenario's results: where a run writes them, the tables, and the docs' copies.

A run of `molecule verify -s failover` writes .cache/failover/results.json
(ignored by git, so running the tests never dirties the tree). The docs quote
molecule/failover/results/reference.json, a committed copy of one run: its
tables in docs/measurements.md, its headline in README.md, its partition
cases in docs/network-splits.md.
`python tools/failover_results.py --adopt` copies the latest run there and
rewrites both, and tests/test_failover_results.py checks that they agree.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path
from typing import Any, TypedDict

from generated_blocks import rewrite_blocks

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / ".cache" / "failover" / "results.json"
REFERENCE = PROJECT_DIR / "molecule" / "failover" / "results" / "reference.json"
DOC = PROJECT_DIR / "docs" / "measurements.md"
README = PROJECT_DIR / "README.md"
BEGIN, END = "<!-- failover-results:begin -->", "<!-- failover-results:end -->"
HEADLINE_BEGIN, HEADLINE_END = "<!-- failover-headline:begin -->", "<!-- failover-headline:end -->"
SPLITS = PROJECT_DIR / "docs" / "network-splits.md"
PARTITION_BEGIN, PARTITION_END = "<!-- partition-timeline:begin -->", "<!-- partition-timeline:end -->"
MAINTENANCE = PROJECT_DIR / "docs" / "maintenance.md"
MAINTENANCE_BEGIN, MAINTENANCE_END = "<!-- maintenance-results:begin -->", "<!-- maintenance-results:end -->"
REPLACEMENT_BEGIN, REPLACEMENT_END = "<!-- replacement-results:begin -->", "<!-- replacement-results:end -->"
# The proxy faults measured before the proxies shared a virtual address: the failover list's cost, kept as it was.
FAILOVER_LIST = REFERENCE.parent / "failover-list.json"
PROXIES_DOC = PROJECT_DIR / "docs" / "proxies.md"
FAILOVER_LIST_BEGIN, FAILOVER_LIST_END = "<!-- failover-list-results:begin -->", "<!-- failover-list-results:end -->"


# The records a run writes, one type each: the tests build them, the table below reads them, and
# tests/test_failover_results.py checks the committed reference against them. Times are seconds (from the fault,
# unless named otherwise); per-worker times are keyed by worker host; inf: never within the run.
class TaskCounts(TypedDict):
    """Every task published, completed at least once, never completed, completed more than once."""

    tasks_published: int
    tasks_completed: int
    tasks_lost: int
    tasks_duplicated: int


class TaskFlow(TaskCounts):
    """How the tasks flowed through a fault: the longest gap between completions, while it lasted."""

    longest_stall_s: float
    fault_held_s: float


class Publishing(TypedDict):
    """The publisher's side: its failed attempts and its slowest single publish, confirmed or failed."""

    publish_retries: int
    longest_publish_s: float


class LongTasks(TypedDict):
    """Tasks that take seconds (their own queue and pool) through the run: what the fault threw away, and whether
    each worker's long pool was whole again (its consumer's prefetch, every process busy at once)."""

    published: int
    lost: int
    # Runs that never completed (terminated, or their process died).
    thrown_away: int
    # Tasks completed more than once (an ack lost with the connection).
    completed_twice: int
    # The work done again: what the thrown-away runs had done, and each repeated completion.
    seconds_repeated: float
    # Per worker: whether every process of its long pool ran a task at once after it last reconnected.
    pools_busy_again: dict[str, bool]
    # Per queue: the prefetch of each consumer, as the brokers hold it after the run.
    consumer_prefetch: dict[str, list[int]]


class Flow(TaskFlow, Publishing):
    """What every run under load records: the tasks' flow, the publisher's side, and the long tasks."""

    long_tasks: LongTasks


class BrokerCase(Flow):
    """One broker fault case (section "cases", keyed by the case's name)."""

    fault: str
    leader: str
    queue_leader: str
    time_to_teardown_s: dict[str, float]
    teardown: dict[str, str]
    idle_client_time_to_teardown_s: float
    idle_client_teardown: str
    time_to_reconnect_s: dict[str, float]
    time_to_consuming_s: dict[str, float]
    publisher_back_s: float
    consume_bound_s: float
    eta_tasks: int
    eta_completed_after_fault: int
    eta_lost: int
    eta_early: int
    eta_max_lateness_s: float
    late_tasks: int
    late_max_delay_s: float
    cluster_whole_after_heal_s: float | None


class ProxyCase(Flow):
    """One proxy fault (section "proxy_cases", keyed by the fault's name)."""

    fault: str
    on: str
    # The proxies holding the virtual address under the fault (both during a split brain).
    address_held_by: list[str]
    time_to_detection_s: dict[str, float]
    time_to_consuming_s: dict[str, float]
    time_to_reconnect_s: dict[str, float]
    # The proxy each worker's session went through under the fault.
    reconnected_through: dict[str, str]
    detection_bound_s: float | None
    stall_bound_s: float
    # The longest time without a completion once the fault healed (the address staying where it moved).
    stall_after_heal_s: float
    after_heal_bound_s: float


class MaintenanceNode(TypedDict):
    """One broker's turn in a rolling restart (from the previous broker's start, or the playbook's): its drain,
    stop and start, and its client connections: the workers' own, handed over before the drain, those the drain
    closed (moved before the stop) and those the stop itself cut."""

    node: str
    turn_s: float
    drain_to_stop_s: float
    stop_to_started_s: float
    longest_stall_s: float
    connections_handed_over: int
    connections_moved: int
    connections_cut_by_stop: int


class MaintenanceFlow(Flow):
    """A planned operation under load (section "maintenance", keyed by the operation); fault_held_s is its
    playbook's run."""


class RollingRestart(MaintenanceFlow):
    """playbooks/rabbitmq-rolling-restart.yml under load, each broker's turn beside the whole run's flow."""

    nodes: list[MaintenanceNode]


class ReplacementStep(TypedDict):
    """One step of a broker's replacement: the new node's (from the playbook's turn for it to its quorum queue
    members caught up) or the old node's (from then to forgotten: handover, drain, shrink, stop, forget)."""

    step: str
    took_s: float
    longest_stall_s: float


class Replacement(MaintenanceFlow):
    """playbooks/rabbitmq-replace-node.yml under load: one broker swapped for a fresh host, and the old node's
    client connections: the workers' own, handed over before the drain, those the drain closed and those its
    stop cut."""

    replaced: str
    by: str
    steps: list[ReplacementStep]
    connections_handed_over: int
    connections_moved: int
    connections_cut_by_stop: int


class ControlRun(TypedDict):
    """The incident's control worker during the long blackhole (section "runs", "control")."""

    window_s: float
    rst_packets: int
    socket_samples: int
    socket_established_throughout: bool
    connection_log_records_after_fault: int
    supervisor_status: str
    tasks_published_in_window: int
    tasks_completed_in_window: int
    tasks_waiting_in_queue: int


class AnchorRun(TaskCounts):
    """Celery's defaults, no proxy, during the long blackhole (section "runs", "anchor")."""

    fault: str
    time_to_reconnect_s: float | None
    time_to_consuming_s: float | None
    longest_stall_s: float
    window_s: float
    publish_errors: int


class IdlePublisherRun(TypedDict):
    """A producer idle for longer than HAProxy's timeout, then publishing (section "runs", "idle_publisher")."""

    idle_s: float
    proxy_timeout_s: float
    publish_latency_s: float
    error: str
    completed: bool


class Results(TypedDict, total=False):
    """A run's results file (and the committed reference)."""

    generated: str
    versions: dict[str, str]
    # Per broker fault: {"teardown": bound, "consuming_again": bound}, under "faults".
    bounds_s: dict[str, dict[str, dict[str, float]]]
    cases: dict[str, BrokerCase]
    proxy_cases: dict[str, ProxyCase]
    maintenance: dict[str, MaintenanceFlow | RollingRestart | Replacement]
    runs: dict[str, ControlRun | AnchorRun | IdlePublisherRun]


Record = (
    BrokerCase | ProxyCase | MaintenanceFlow | RollingRestart | Replacement | ControlRun | AnchorRun | IdlePublisherRun
)
RECORDS: dict[str, type[Any] | dict[str, type[Any]]] = {
    "cases": BrokerCase,
    "proxy_cases": ProxyCase,
    "maintenance": {
        "certificate_rotation": MaintenanceFlow,
        "rolling-restart": RollingRestart,
        "replace-node": Replacement,
    },
    "runs": {"control": ControlRun, "anchor": AnchorRun, "idle_publisher": IdlePublisherRun},
}


def record_type(section: str, name: str) -> type[Any] | None:
    """The record type of a result in this section under this name (None: an untyped section, e.g. bounds_s)."""
    kind = RECORDS.get(section)
    return kind.get(name) if isinstance(kind, dict) else kind


def key_errors(kind: type[Any], result: dict[str, Any]) -> list[str]:
    """How a result's keys differ from its record type's: [] when they are the same."""
    keys: frozenset[str] = kind.__required_keys__
    return [f"missing {key}" for key in sorted(keys - set(result))] + [
        f"unknown {key}" for key in sorted(set(result) - keys)
    ]


def record(section: str, name: str, result: Record | dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Add one result (a case, the control, the anchor...) to this run's results file."""
    kind = record_type(section, name)
    errors = key_errors(kind, dict(result)) if kind else []
    if errors:
        raise ValueError(f"{section}/{name} is not a {kind.__name__}: {', '.join(errors)}")
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data["generated"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    data.update(extra or {})
    data.setdefault(section, {})[name] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")


def start_run() -> None:
    RESULTS.unlink(missing_ok=True)


def _slowest(values: dict[str, float]) -> float:
    return max(values.values()) if values else float("inf")


def _task_counts(run: Any) -> str:
    """The tables' "published / completed / lost / duplicated" cell."""
    return f"{run['tasks_published']} / {run['tasks_completed']} / {run['tasks_lost']} / {run['tasks_duplicated']}"


def table(data: Results) -> list[str]:
    """The results as a Markdown table: per case, the slower worker's times (seconds from the fault)."""
    rows = [
        "| fault (held) | quorum leader | teardown | reconnected | consuming again | longest stall "
        "| longest publish | published / completed / lost / duplicated | late (max delay) | countdown tasks on time "
        "| cluster whole after the heal |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in data.get("cases", {}).values():
        teardown = "/".join(sorted(set(case["teardown"].values())))
        rows.append(
            f"| {case['fault']} ({case['fault_held_s']} s) | {case['leader']} "
            f"| {teardown} {_slowest(case['time_to_teardown_s'])} "
            f"| {_slowest(case['time_to_reconnect_s'])} | {_slowest(case['time_to_consuming_s'])} "
            f"| {case['longest_stall_s']} | {case['longest_publish_s']} | {_task_counts(case)} "
            f"| {case['late_tasks']} ({case['late_max_delay_s']}) "
            f"| {case['eta_tasks'] - case['eta_lost'] - case['eta_early']} of {case['eta_tasks']} "
            f"| {case['cluster_whole_after_heal_s']} |"
        )
    anchor = data.get("runs", {}).get("anchor")
    if anchor:
        rows.append(
            f"| {anchor['fault']} | anchor: Celery defaults, no proxy | - | {anchor['time_to_reconnect_s']} "
            f"| {anchor['time_to_consuming_s']} | {anchor['longest_stall_s']} | - | {_task_counts(anchor)} "
            "| - | - | - |"
        )
    return rows


def _slowest_hit(case: Any, times: str) -> float | None:
    """The slowest of the workers a proxy fault hit (those that noticed it) in one of the case's per-worker times;
    None when it hit none."""
    hit = {w for w, t in case["time_to_detection_s"].items() if t != float("inf")}
    return _slowest({w: t for w, t in case[times].items() if w in hit}) if hit else None


def proxy_table(data: Results) -> list[str]:
    """The proxy faults: per case, the slowest hit worker's times (seconds from the fault)."""
    cases = data.get("proxy_cases", {})
    if not cases:
        return []
    rows = [
        "| proxy fault (held) | on | address on | noticed (bound) | reconnected | consuming again "
        "| longest stall (bound) | after the heal (bound) | longest publish "
        "| published / completed / lost / duplicated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases.values():
        detected = _slowest_hit(case, "time_to_detection_s")
        noticed = "no worker" if detected is None else f"{detected} ({case['detection_bound_s']})"
        consuming, reconnected = (_slowest_hit(case, times) for times in ("time_to_consuming_s", "time_to_reconnect_s"))
        held = ", ".join(case["address_held_by"]) or "nobody"
        rows.append(
            f"| {case['fault']} ({case['fault_held_s']} s) | {case['on']} | {held} | {noticed} "
            f"| {'-' if reconnected is None else reconnected} | {'-' if consuming is None else consuming} "
            f"| {case['longest_stall_s']} ({case['stall_bound_s']}) "
            f"| {case['stall_after_heal_s']} ({case['after_heal_bound_s']}) | {case['longest_publish_s']} "
            f"| {_task_counts(case)} |"
        )
    return rows


# What each fault is, for the table of every single fault: the tier it hits, and how.
SINGLE_FAULTS = {
    "blackhole": ("network", "a broker's packets all dropped"),
    "one-way-loss": ("network", "a broker's outgoing packets dropped"),
    "partition": ("network", "a broker cut off from its peers"),
    "freeze": ("broker", "RabbitMQ stopped (SIGSTOP)"),
    "crash": ("broker", "RabbitMQ killed"),
    "proxy-crash": ("proxy", "HAProxy killed on the address holder"),
    "haproxy-stopped": ("proxy", "HAProxy stopped, the host up"),
    "proxy-vanishes": ("network", "the address holder's packets all dropped"),
    "keepalived-killed": ("proxy", "keepalived killed on the address holder"),
    "split-brain": ("network", "VRRP lost between the proxies"),
    "worker-cut-from-proxy": ("network", "one worker's packets to the address dropped"),
    "reload": ("proxy", "a configuration change, reloaded"),
    "maintenance": ("proxy", "the holder drained by the playbook"),
}


def _long_work(run: Any) -> str:
    """A run's long tasks: thrown away / completed twice (seconds of work repeated), of those published."""
    long = run.get("long_tasks")
    if not long:
        return "-"
    return (f"{long['thrown_away']} / {long['completed_twice']} ({long['seconds_repeated']} s) "
            f"of {long['published']}")  # fmt: skip


def single_fault_table(data: Results) -> list[str]:
    """Every single fault of the reference run in one table: the slowest hit worker consuming again, the fleet's
    longest stall in task completions, the longest single publish, and tasks lost (seconds from the fault)."""
    rows = [
        "| single fault | tier | what | consuming again | longest stall | longest publish | lost "
        "| long tasks thrown away / done twice (work repeated) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cases: list[tuple[str, Flow, str]] = [
        (f"{case['fault']} (leader {case['leader'].replace(' broker', '')})", case,
         f"{_slowest(case['time_to_consuming_s'])}") for case in data.get("cases", {}).values()
    ]  # fmt: skip
    for case in data.get("proxy_cases", {}).values():
        consuming = _slowest_hit(case, "time_to_consuming_s")
        cases.append((case["fault"], case, "no worker noticed" if consuming is None else f"{consuming}"))
    for name, case, consuming in cases:
        tier, what = SINGLE_FAULTS.get(case["fault"], ("?", "?"))
        rows.append(
            f"| {name} | {tier} | {what} | {consuming} | {case['longest_stall_s']} | {case['longest_publish_s']} "
            f"| {case['tasks_lost']} of {case['tasks_published']} | {_long_work(case)} |"
        )
    return rows


def incident_lines(data: Results) -> list[str]:
    """The control run (the incident's settings) and the idle publisher, as sentences."""
    lines = []
    control = data.get("runs", {}).get("control")
    if control:
        lines.append(
            f"Control (incident settings, no proxy, blackhole, {control['window_s']} s): "
            f"{control['rst_packets']} RST packets, socket ESTABLISHED in "
            f"{'all' if control['socket_established_throughout'] else 'not all'} {control['socket_samples']} samples, "
            f"{control['connection_log_records_after_fault']} connection log records, Supervisor "
            f"{control['supervisor_status']}, {control['tasks_completed_in_window']} of "
            f"{control['tasks_published_in_window']} tasks completed, {control['tasks_waiting_in_queue']} waiting."
        )
    idle = data.get("runs", {}).get("idle_publisher")
    if idle:
        lines.append(
            f"Idle publisher: after {idle['idle_s']} s without a publish (HAProxy's timeout: "
            f"{idle['proxy_timeout_s']} s), the next publish took {idle['publish_latency_s']} s, "
            f"raised {'nothing' if not idle['error'] else idle['error']}, and its task completed: {idle['completed']}."
        )
    return lines


def headline_block(data: Results) -> str:
    """The README's summary of the reference run, between its markers."""
    cases = data["cases"].values()
    silent = [case for case in cases if case["fault"] != "crash"]
    crashes = [case for case in cases if case["fault"] == "crash"]
    anchor, proxies = data["runs"]["anchor"], data.get("proxy_cases", {}).values()
    published = sum(case["tasks_published"] for case in [*cases, *proxies])
    lost = sum(case["tasks_lost"] for case in [*cases, *proxies])
    faults = ", ".join(sorted({case["fault"] for case in cases}))
    lines = [
        f"- Broker faults ({faults}; {len(data['cases'])} cases): tasks completing again within "
        f"{max(_slowest(case['time_to_consuming_s']) for case in silent)} s of a silent fault and "
        f"{max(_slowest(case['time_to_consuming_s']) for case in crashes)} s of a crash; the cluster whole again "
        f"by itself within {max(case['cluster_whole_after_heal_s'] for case in cases)} s of each heal.",
        f"- Celery's defaults without the proxy, under a {anchor['window_s']} s {anchor['fault']}: no task completed "
        f"for {anchor['longest_stall_s']} s, {anchor['tasks_lost']} of {anchor['tasks_published']} tasks lost.",
    ]
    if proxies:
        worst = max(proxies, key=lambda case: case["longest_stall_s"])
        lines.append(
            f"- Proxy faults ({len(proxies)} cases, the proxies sharing a virtual address): the longest stall in "
            f"task completions {worst['longest_stall_s']} s ({worst['fault']})."
        )
    every = max([*cases, *proxies], key=lambda case: case["longest_stall_s"])
    lines.append(
        f"- Every single fault ({len(data['cases']) + len(proxies)} cases, [one table](docs/measurements.md#failover)):"
        f" the longest stall in task completions {every['longest_stall_s']} s ({every['fault']})."
    )
    slowest = max([*cases, *proxies], key=lambda case: case["longest_publish_s"])
    lines.append(
        f"- The longest single publish, across every fault case: {slowest['longest_publish_s']} s ({slowest['fault']})."
    )
    lines.append(f"- {lost} of {published} tasks published through the proxies lost, across every case.")
    return "\n".join([HEADLINE_BEGIN, *lines, HEADLINE_END])


def partition_block(data: Results) -> str:
    """docs/network-splits.md's timeline: the partition cases side by side, the shorter cut first."""
    cuts = sorted((c for c in data["cases"].values() if c["fault"] == "partition"), key=lambda c: c["fault_held_s"])
    rows = {
        "quorum leader": [c["leader"] for c in cuts],
        "HAProxy's teardown reaches the workers": [
            f"{'/'.join(sorted(set(c['teardown'].values())))} {_slowest(c['time_to_teardown_s'])} s" for c in cuts
        ],
        "reconnected through HAProxy": [f"{_slowest(c['time_to_reconnect_s'])} s" for c in cuts],
        "tasks completing again": [f"{_slowest(c['time_to_consuming_s'])} s" for c in cuts],
        "longest stall in the fleet": [f"{c['longest_stall_s']} s" for c in cuts],
        "tasks published / completed / lost": [
            f"{c['tasks_published']} / {c['tasks_completed']} / {c['tasks_lost']}" for c in cuts
        ],
        "cluster whole after the network returned (no restart)": [f"{c['cluster_whole_after_heal_s']} s" for c in cuts],
    }
    lines = [
        "| | " + " | ".join(f"cut held {c['fault_held_s']} s" for c in cuts) + " |",
        "|---" * (len(cuts) + 1) + "|",
    ]
    lines += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()]
    return "\n".join([PARTITION_BEGIN, *lines, PARTITION_END])


def maintenance_block(data: Results) -> str:
    """docs/maintenance.md's table: each broker's turn in the rolling restart under load, then the whole run."""
    run = data.get("maintenance", {}).get("rolling-restart")
    if not run:
        return "\n".join([MAINTENANCE_BEGIN, "The reference run has no rolling restart yet.", MAINTENANCE_END])
    lines = [
        "| broker | its turn | drain to stop | stop to started | longest stall | workers handed over "
        "| connections moved by the drain | connections cut by the stop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {turn['node']} | {turn['turn_s']} s | {turn['drain_to_stop_s']} s | {turn['stop_to_started_s']} s "
        f"| {turn['longest_stall_s']} s | {turn['connections_handed_over']} | {turn['connections_moved']} "
        f"| {turn['connections_cut_by_stop']} |"
        for turn in run["nodes"]
    ]
    lines += [
        "",
        f"The whole playbook: {run['fault_held_s']} s; longest stall {run['longest_stall_s']} s; tasks published / "
        f"completed / lost / duplicated: {_task_counts(run)}; publish retries {run['publish_retries']}, longest "
        f"publish {run['longest_publish_s']} s; long tasks thrown away / completed twice (work repeated): "
        f"{_long_work(run)}.",
    ]
    return "\n".join([MAINTENANCE_BEGIN, *lines, MAINTENANCE_END])


def replacement_block(data: Results) -> str:
    """docs/maintenance.md's table of the broker replaced under load: each step, then the whole run."""
    run = data.get("maintenance", {}).get("replace-node")
    if not run:
        return "\n".join([REPLACEMENT_BEGIN, "The reference run has no replacement yet.", REPLACEMENT_END])
    lines = ["| step | took | longest stall |", "|---|---|---|"]
    lines += [f"| {step['step']} | {step['took_s']} s | {step['longest_stall_s']} s |" for step in run["steps"]]
    lines += [
        "",
        f"{run['replaced']} replaced by {run['by']}. The whole playbook: {run['fault_held_s']} s; longest stall "
        f"{run['longest_stall_s']} s; tasks published / completed / lost / duplicated: {_task_counts(run)}; publish "
        f"retries {run['publish_retries']}, longest publish {run['longest_publish_s']} s; long tasks thrown away / "
        f"completed twice (work repeated): {_long_work(run)}. The old node's client connections: "
        f"{run['connections_handed_over']} handed over by their workers, {run['connections_moved']} moved by the "
        f"drain, {run['connections_cut_by_stop']} cut by its stop.",
    ]
    return "\n".join([REPLACEMENT_BEGIN, *lines, REPLACEMENT_END])


def measurements_block(data: Results) -> str:
    versions = ", ".join(f"{name} {version}" for name, version in data.get("versions", {}).items())
    proxies = proxy_table(data)
    return "\n".join(
        [BEGIN, "Every single fault:", "", *single_fault_table(data), "", "The broker faults in detail:", "",
         *table(data), "", *incident_lines(data), "", *(["The proxy faults in detail:", ""] if proxies else []),
         *proxies, *([""] if proxies else []), f"Versions: {versions}.", END]
    )  # fmt: skip


def failover_list_block(old: dict[str, Any]) -> str:
    """docs/proxies.md's table of the proxy faults with the failover list alone (no virtual address)."""
    lines = [
        "| proxy fault (held) | noticed | consuming again | longest stall | longest publish | lost |",
        "|---|---|---|---|---|---|",
    ]
    for case in old["proxy_cases"].values():
        noticed = _slowest_hit(case, "time_to_detection_s")
        consuming = _slowest_hit(case, "time_to_consuming_s")
        lines.append(
            f"| {case['fault']} ({case['fault_held_s']} s) | {'no worker' if noticed is None else noticed} "
            f"| {'-' if consuming is None else consuming} | {case['longest_stall_s']} "
            f"| {case['longest_publish_s']} | {case['tasks_lost']} of {case['tasks_published']} |"
        )
    return "\n".join([FAILOVER_LIST_BEGIN, *lines, FAILOVER_LIST_END])


def generated(data: Results) -> list[tuple[Path, str, str, str]]:
    """Every block quoted from `data` (and the failover list's run): the file, its begin and end markers, the
    block."""
    failover_list = json.loads(FAILOVER_LIST.read_text())
    return [
        (PROXIES_DOC, FAILOVER_LIST_BEGIN, FAILOVER_LIST_END, failover_list_block(failover_list)),
        (DOC, BEGIN, END, measurements_block(data)),
        (README, HEADLINE_BEGIN, HEADLINE_END, headline_block(data)),
        (SPLITS, PARTITION_BEGIN, PARTITION_END, partition_block(data)),
        (MAINTENANCE, MAINTENANCE_BEGIN, MAINTENANCE_END, maintenance_block(data)),
        (MAINTENANCE, REPLACEMENT_BEGIN, REPLACEMENT_END, replacement_block(data)),
    ]


def adopt(data: Results) -> None:
    """Rewrite the docs' tables and the README's headline from `data`."""
    rewrite_blocks(generated(data))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adopt", action="store_true", help="copy the latest run to the reference and the docs")
    args = parser.parse_args()
    if args.adopt:
        if not RESULTS.exists():
            print(f"no results at {RESULTS}: run `make molecule SCENARIOS=failover` first", file=sys.stderr)
            return 1
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(RESULTS, REFERENCE)
        adopt(json.loads(REFERENCE.read_text()))
    data = json.loads((RESULTS if RESULTS.exists() else REFERENCE).read_text())
    print("\n".join(table(data) + incident_lines(data) + proxy_table(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
