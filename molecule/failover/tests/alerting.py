"""The failover stack's monitoring tier as the alert tests see it: Alertmanager's address, each alert's bound
from the scenario's own settings, and the results file the docs quote (tools/alert_results.py)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import testinfra.host
from faults import GROUP_VARS
from fleetlib.alerts import AlertWatch
from fleetlib.faults import DETECTION_S, SCHEDULING_SLACK_S
from fleetlib.hosts import container_address, get
from fleetlib.project import PROJECT_DIR, role_defaults

MONITORING = "fo-monitoring"
SETTINGS = {**role_defaults("monitoring"), **GROUP_VARS["all"]}
SCRAPE_S = SETTINGS["monitoring_scrape_interval_s"]
EVAL_S = SETTINGS["monitoring_evaluation_interval_s"]
# A failed scrape is known when its timeout ends (the role sets it to the interval, at most 10 s).
SCRAPE_TIMEOUT_S = min(SCRAPE_S, 10)
FEED_S = SETTINGS["celery_worker_feed_interval_s"]
# Every fault's outcomes, which docs/monitoring.md quotes (tools/alert_results.py --adopt).
RESULTS = PROJECT_DIR / ".cache" / "alerts" / "results.json"


def fire_bound_s(hold_s: float, noticed_s: float) -> float:
    """From the fault to the alert in Alertmanager: until the metrics show it (`noticed_s`), the next scrape,
    the evaluation that sees it, its hold time, the evaluation that fires it, and slack."""
    return noticed_s + SCRAPE_S + EVAL_S + hold_s + EVAL_S + SCHEDULING_SLACK_S


# From the heal to the alert gone: the next scrape, the evaluation that resolves it, and slack; for a broker the
# proxies' health checks must pass again first (rise), which the detection bound covers.
RESOLVE_BOUND_S = DETECTION_S + SCRAPE_S + 2 * EVAL_S + SCHEDULING_SLACK_S
RESOLVE_BOUNDS = {
    # The growth is measured over a window: once the leak stops, the slope falls below the threshold within it.
    "CeleryDescriptorsGrowing": SETTINGS["monitoring_alert_fd_growth_window_s"]
    + FEED_S
    + SCRAPE_S
    + 2 * EVAL_S
    + SCHEDULING_SLACK_S,
}


def resolve_bound_s(alert: str) -> float:
    return RESOLVE_BOUNDS.get(alert, RESOLVE_BOUND_S)


BOUNDS = {
    "BrokerDownInProxy": fire_bound_s(SETTINGS["monitoring_alert_broker_down_s"], DETECTION_S),
    "RabbitMQNodeDown": fire_bound_s(SETTINGS["monitoring_alert_target_down_s"], SCRAPE_TIMEOUT_S),
    # No progress for the whole window, then held two evaluations.
    "ConsumersFrozen": fire_bound_s(2 * EVAL_S, SETTINGS["monitoring_alert_frozen_consumer_s"]),
    # Two of the feed's samples scraped show the growth.
    "CeleryDescriptorsGrowing": fire_bound_s(SETTINGS["monitoring_alert_fd_s"], 2 * (FEED_S + SCRAPE_S)),
}


def monitoring_url(host: testinfra.host.Host, service: str) -> str:
    """Prometheus's or Alertmanager's address, as the control node reaches it."""
    return f"http://{container_address(get(host, MONITORING))}:{SETTINGS[f'monitoring_{service}_port']}"


def alertmanager(host: testinfra.host.Host) -> AlertWatch:
    return AlertWatch(monitoring_url(host, "alertmanager"))


@dataclass
class Outcome:
    fault: str
    alert: str
    labels: dict[str, str]
    fired_after_s: float | None
    fire_bound_s: float
    resolved_after_s: float | None
    resolve_bound_s: float


def outcome(
    fault: str, alert: str, labels: dict[str, str], fired_after_s: float | None, resolved_after_s: float | None
) -> Outcome:
    """An alert's timings beside its bounds."""
    return Outcome(fault, alert, labels, fired_after_s, round(BOUNDS[alert], 1), resolved_after_s,
                   round(resolve_bound_s(alert), 1))  # fmt: skip


def measure(watch: AlertWatch, fault: str, alert: str, labels: dict[str, str], start: float, healed: float) -> Outcome:
    return outcome(fault, alert, labels, watch.fired_after(alert, labels, start),
                   watch.resolved_after(alert, labels, start, healed))  # fmt: skip


def record(fault: str, outcomes: list[Outcome]) -> None:
    """This fault's outcomes, beside the other faults' of the same results file."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[fault] = {"recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "outcomes": [asdict(outcome) for outcome in outcomes]}  # fmt: skip
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


def check(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        assert outcome.fired_after_s is not None, f"{outcome.alert} {outcome.labels} never fired"
        assert outcome.fired_after_s <= outcome.fire_bound_s, outcome
        assert outcome.resolved_after_s is not None, f"{outcome.alert} {outcome.labels} did not resolve"
        assert outcome.resolved_after_s <= outcome.resolve_bound_s, outcome
