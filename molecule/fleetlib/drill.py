"""A drill: tasks published through the proxies, one fault injected and healed, and what the fleet felt.

The measures are the failover tests' own (fleetlib.publishing, accounting, hosts, alerts): when each worker lost
its connection (its log says so), reconnected and consumed again; the longest stall in completions; tasks
published, completed, lost and duplicated; the longest publish; every alert that fired, and when. Beside them, the
series the picture draws (fleetlib.drill_plot): completions per second from the tasks' own log, each broker's
state in each HAProxy (sampled on the proxy every 0.5 s), and the task queue's ready messages and consumers from
Prometheus.

`make drill` runs one on the lab (tools/drill.py); the failover scenario's tests/test_alerts.py runs one on the
shared stack and checks its picture. Times in the record are seconds from the fault.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import testinfra.host
from celery import Celery

from fleetlib.accounting import Account, completions, consuming_again, longest_stall
from fleetlib.alerts import AlertWatch, query_range
from fleetlib.hosts import log_times, reconnects, root
from fleetlib.proxies import clients_moved_to, haproxy_server_status, start_state_sampler, stop_state_sampler
from fleetlib.publishing import Publisher
from fleetlib.waits import wait_for

TASK = "celery_fleet_app.tasks.record"
LOST = "Connection to broker lost"
# The task queue's depth and consumers. More than one broker may report a quorum queue, each with the whole
# count (measured on RabbitMQ 4.0: its leader's node and the node of the consumers' channels), so the largest.
QUEUE_SERIES = {
    "queue_ready": 'max(rabbitmq_detailed_queue_messages_ready{{queue="{queue}"}})',
    "queue_consumers": 'max(rabbitmq_detailed_queue_consumers{{queue="{queue}"}})',
}


@dataclass
class DrillStack:
    """The fleet a drill runs on, whichever inventory it comes from."""

    brokers: dict[str, testinfra.host.Host]
    proxies: dict[str, testinfra.host.Host]
    workers: dict[str, testinfra.host.Host]
    # A publisher's app, through the proxies, configured as the reference app's publishers are (publisher_settings).
    app: Celery
    prometheus_url: str
    alertmanager_url: str
    completed_log: str
    worker_log: str
    queue: str = "celery"


@dataclass(frozen=True)
class DrillPlan:
    fault: str
    # The host the fault hits: a broker or a proxy.
    target: str
    inject: str
    heal: str
    # How long the fault is held at most (less when the drill's `hold_until` is met first).
    hold_s: float
    # Tasks flowing before the fault, and after the fleet is whole again, for the picture.
    baseline_s: float = 10.0
    settle_s: float = 10.0
    # After the heal, how long to wait for HAProxy to show every broker UP and every alert to resolve.
    recover_s: float = 180.0


def state_changes(samples: list[tuple[float, dict[str, str]]]) -> list[tuple[float, dict[str, str]]]:
    """The samples where HAProxy's view changed, and the last: the same picture from a few rows."""
    changes = [row for number, row in enumerate(samples) if number == 0 or row[1] != samples[number - 1][1]]
    return changes + samples[-1:] if samples and changes[-1] is not samples[-1] else changes


def _elapse(seconds: float) -> None:
    """A stretch of the drill's own timeline (tasks flowing for the picture), not a wait for a state."""
    threading.Event().wait(seconds)


@dataclass
class Drill:
    stack: DrillStack
    plan: DrillPlan
    prefix: str = field(default_factory=lambda: f"drill-{uuid.uuid4().hex[:6]}")
    # Epoch times of the drill's start, the fault, the heal and its end; monotonic ones for Alertmanager's watch.
    started_at: float = 0.0
    fault_at: float = 0.0
    healed_at: float = 0.0
    ended_at: float = 0.0
    fault_mono: float = 0.0
    healed_mono: float = 0.0
    watch: AlertWatch | None = None
    progress: Callable[[str], None] = lambda _: None

    def run(self, hold_until: Callable[[Drill], bool] | None = None) -> dict[str, Any]:
        """Publish, inject, hold, heal, wait for the fleet to be whole again; the record of it all."""
        stack, plan = self.stack, self.plan
        watch = self.watch = AlertWatch(stack.alertmanager_url)
        already = watch.active()
        watch.start()
        publisher = Publisher(stack.app, TASK, self.prefix)
        for proxy in stack.proxies.values():
            start_state_sampler(proxy)
        try:
            self._start_publishing(publisher)
            self.progress(f"publishing; {plan.baseline_s:.0f} s of tasks flowing before the fault")
            _elapse(plan.baseline_s)
            self._fault(hold_until)
            self._recover(watch)
            _elapse(plan.settle_s)
        finally:
            publisher.stop()
            self.ended_at = time.time()
            samples = {name: stop_state_sampler(proxy) for name, proxy in stack.proxies.items()}
            watch.stop()
        alerts = self._alerts(already)
        return self._record(publisher, samples, alerts)

    def _start_publishing(self, publisher: Publisher) -> None:
        """For a broker fault, every client moved onto the target first (so the fault hits them all)."""
        stack, plan = self.stack, self.plan
        self.started_at = time.time()
        if plan.target not in stack.brokers:
            publisher.start()
        else:
            self.progress(f"moving every client through the proxies onto {plan.target}")
            workers = list(stack.workers.values())
            with clients_moved_to(list(stack.proxies.values()), list(stack.brokers), plan.target, workers,
                                  stack.worker_log):  # fmt: skip
                publisher.start()
                assert wait_for(lambda: publisher.published, timeout=30), "the publisher published nothing"
        done = lambda: all(self._done(worker) for worker in stack.workers.values())  # noqa: E731
        assert wait_for(done, timeout=60), "a worker completed no task within 60 s"

    def _fault(self, hold_until: Callable[[Drill], bool] | None) -> None:
        target = {**self.stack.brokers, **self.stack.proxies}[self.plan.target]
        self.progress(f"{self.plan.fault} on {self.plan.target}: {self.plan.inject}")
        self.fault_at, self.fault_mono = time.time(), time.monotonic()
        root(target, self.plan.inject)
        try:
            if hold_until:
                wait_for(lambda: hold_until(self), timeout=self.plan.hold_s, interval=1)
            else:
                _elapse(self.plan.hold_s)
        finally:
            root(target, self.plan.heal)
            self.healed_at, self.healed_mono = time.time(), time.monotonic()
        self.progress(f"healed after {self.healed_at - self.fault_at:.1f} s: {self.plan.heal}")

    def _recover(self, watch: AlertWatch) -> None:
        """Until HAProxy shows every broker UP again and no alert the fault fired is still active (or time's up)."""

        def whole() -> bool:
            states = [haproxy_server_status(proxy) for proxy in self.stack.proxies.values()]
            fired = watch.seen_since(self.fault_mono)
            still = [s for s in fired if watch.firing(s.labels["alertname"], s.labels, self.fault_mono)]
            return all(state == "UP" for view in states for state in view.values()) and not still

        if not wait_for(whole, timeout=self.plan.recover_s, interval=2):
            self.progress(f"not whole {self.plan.recover_s:.0f} s after the heal: going on")

    def _done(self, worker: testinfra.host.Host) -> list[tuple[str, float]]:
        return completions(worker, self.stack.completed_log, self.prefix)

    def since(self, when: float | None) -> float | None:
        return None if when is None or when == float("inf") else round(when - self.fault_at, 2)

    def _worker_timeline(self, name: str, done: list[tuple[str, float]]) -> dict[str, float | None]:
        worker = self.stack.workers[name]
        lost = [t for t in log_times(worker, self.stack.worker_log, LOST) if t >= self.fault_at]
        back = reconnects(worker, self.stack.worker_log, self.fault_at)
        consuming = consuming_again(back, done) if back else []
        return {"connection_lost_s": self.since(min(lost, default=None)),
                "reconnected_s": self.since(min(back, default=None)),
                "consuming_again_s": self.since(consuming[0] if consuming else None)}  # fmt: skip

    def _alerts(self, already: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Every alert first seen during the drill (not those already active at its start)."""
        assert self.watch is not None
        fired = []
        for seen in sorted(self.watch.seen_since(0.0), key=lambda s: s.first):
            if seen.labels in already:
                continue
            active = self.watch.firing(seen.labels["alertname"], seen.labels, seen.first)
            fired.append({"alert": seen.labels["alertname"],
                          "labels": {k: v for k, v in sorted(seen.labels.items()) if k not in ("alertname", "job")},
                          "fired_s": round(seen.first - self.fault_mono, 1),
                          "resolved_s": None if active else round(seen.last - self.fault_mono, 1)})  # fmt: skip
        return fired

    def _queue_series(self) -> dict[str, list[list[float]]]:
        series = {}
        for name, expr in QUEUE_SERIES.items():
            try:
                points = query_range(self.stack.prometheus_url, expr.format(queue=self.stack.queue),
                                     self.started_at, self.ended_at)  # fmt: skip
            except OSError as error:
                self.progress(f"Prometheus did not answer ({error}): no {name} series")
                points = []
            series[name] = [[round(when - self.fault_at, 2), value] for when, value in points]
        return series

    def _record(
        self, publisher: Publisher, samples: dict[str, list[tuple[float, dict[str, str]]]], alerts: list[dict[str, Any]]
    ) -> dict[str, Any]:
        published = publisher.tokens()
        finished = lambda: [pair for w in self.stack.workers.values() for pair in self._done(w)]  # noqa: E731
        wait_for(lambda: published <= {token for token, _ in finished()}, timeout=120, interval=2)
        per_worker = {name: self._done(worker) for name, worker in self.stack.workers.items()}
        done = [pair for pairs in per_worker.values() for pair in pairs]
        runs = Counter(token for token, _ in done)
        times = sorted(when for _, when in done)
        first_second = int(self.started_at)
        per_second = Counter(int(when) - first_second for when in times)
        return {
            "fault": self.plan.fault,
            "target": self.plan.target,
            "inject": self.plan.inject,
            "heal": self.plan.heal,
            "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.fault_at)),
            "started_s": self.since(self.started_at),
            "healed_s": self.since(self.healed_at),
            "ended_s": self.since(self.ended_at),
            "workers": {name: self._worker_timeline(name, pairs) for name, pairs in per_worker.items()},
            "longest_stall_s": round(longest_stall(times, self.fault_at, self.ended_at), 2),
            "longest_publish_s": round(publisher.longest_publish_s(), 2),
            "publish_retries": publisher.errors,
            **Account(published, runs).summary(),
            "alerts": alerts,
            "series": {
                # Executions per second of the run (a task run twice counts twice), at each second's start.
                "completions_per_s": [
                    [self.since(first_second + second), per_second[second]]
                    for second in range(int(self.ended_at) - first_second + 1)
                ],
                "haproxy": {
                    proxy: [[self.since(when), states] for when, states in state_changes(rows)]
                    for proxy, rows in samples.items()
                },
                **self._queue_series(),
            },
        }


def alert_groups(record: dict[str, Any], moment: str) -> list[tuple[float, str, int, str]]:
    """(when, alert, how many series, which) of the alerts that fired (moment "fired_s") or resolved
    ("resolved_s") together: one rule's series at one evaluation (a quorum queue alert fires for every queue at
    once) make one entry."""
    together: dict[tuple[float, str], list[dict[str, str]]] = {}
    for alert in record["alerts"]:
        if alert[moment] is not None:
            labels = {k: v for k, v in alert["labels"].items() if k != "severity"}
            together.setdefault((alert[moment], alert["alert"]), []).append(labels)
    groups = []
    for (when, name), series in sorted(together.items()):
        keys = sorted({key for labels in series for key in labels})
        parts = []
        for key in keys:
            values = sorted({labels.get(key, "") for labels in series})
            more = f" and {len(values) - 3} more" if len(values) > 3 else ""
            parts.append(f"{key}={', '.join(values[:3])}{more}")
        groups.append((when, name, len(series), "; ".join(parts)))
    return groups


def timeline(record: dict[str, Any]) -> str:
    """The drill as an operator reads it: events in order, then the counts."""
    events = [(record["started_s"], "publishing starts"), (0.0, f"{record['fault']} on {record['target']}"),
              (record["healed_s"], "healed"), (record["ended_s"], "publishing stops")]  # fmt: skip
    words = {"connection_lost_s": "lost its connection", "reconnected_s": "reconnected",
             "consuming_again_s": "completes tasks again"}  # fmt: skip
    for worker, marks in record["workers"].items():
        events += [(when, f"{worker} {words[mark]}") for mark, when in marks.items() if when is not None]
    for moment, verb in (("fired_s", "fires"), ("resolved_s", "resolves")):
        for when, name, count, which in alert_groups(record, moment):
            events.append((when, f"alert {name} {verb}{f' for {count} series' if count > 1 else ''} ({which})"))
    lines = [f"Drill: {record['fault']} on {record['target']}, {record['recorded']}"]
    lines += [f"{when:>9.1f} s  {what}" for when, what in sorted(events, key=lambda e: e[0])]
    lines += [
        f"Longest stall in completions: {record['longest_stall_s']} s; longest publish: "
        f"{record['longest_publish_s']} s ({record['publish_retries']} retried)",
        f"Tasks: {record['tasks_published']} published, {record['tasks_completed']} completed, "
        f"{record['tasks_lost']} lost, {record['tasks_duplicated']} run twice",
    ]
    if not record["alerts"]:
        lines.append("Alerts: none fired")
    return "\n".join(lines)
