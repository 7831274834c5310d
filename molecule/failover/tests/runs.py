"""One fault run on the shared stack, whatever the fault: the protected workers, a publisher through both proxies,
the tasks' completions, and what every case measures and holds of them (no stall past its bound, none lost).

test_failover.py (broker faults) and test_proxy_faults.py (proxy faults) extend it.
"""

from __future__ import annotations

import uuid
from collections import Counter

import testinfra.host
from failover_results import Flow, LongTasks, Publishing, TaskFlow
from faults import (
    COMPLETED_LOG,
    CONSUMER_PREFETCH,
    LONG_INTERVAL_S,
    LONG_LOG,
    LONG_POOL,
    LONG_QUEUE,
    LONG_TASK,
    LONG_TASK_S,
    STARTED_LOG,
    VHOST,
    WORKERS,
)
from fleetlib.accounting import Account, Line, completions, log_lines, longest_stall
from fleetlib.hosts import get, reconnects
from fleetlib.longtasks import busy_again, completed_twice, consumer_prefetch, executions, seconds_repeated, thrown_away
from fleetlib.publishing import Publisher
from fleetlib.waits import wait_for
from stack import QUEUE_READER, fleet_publisher

# How long the long tasks left queued when the publishers stop may take to drain (a fault's backlog included).
LONG_DRAIN_S = 120

TASK = "celery_fleet_app.tasks.record"


class FaultRun:
    """The workers (by name), the publisher of this run's tasks, and when the fault began and healed."""

    def __init__(self, haproxy: testinfra.host.Host, label: str) -> None:
        self.haproxy = haproxy
        self.workers = {name: get(haproxy, name) for name in WORKERS}
        self.prefix = f"{label}-{uuid.uuid4().hex[:6]}"
        app = fleet_publisher(haproxy, "celery")
        self.publisher = Publisher(app, TASK, self.prefix)
        # Tasks that take seconds, alongside: their own queue, a prefix the short ones' never starts with.
        long_app = fleet_publisher(haproxy, LONG_QUEUE)
        self.long_publisher = Publisher(
            long_app, LONG_TASK, f"long-{self.prefix}", LONG_INTERVAL_S, extra_args=[LONG_TASK_S]
        )
        self.fault_at = self.healed_at = 0.0
        # The broker whose view of the consumers counts (another, once the replacement removed it).
        self.queue_reader = QUEUE_READER

    def start(self) -> None:
        """Publish both kinds of task."""
        self.publisher.start()
        self.long_publisher.start()

    def stop(self) -> None:
        self.publisher.stop()
        self.long_publisher.stop()

    def stop_long(self) -> None:
        """Stop publishing long tasks once no worker will reconnect again: those under way finish during the case's
        last wait instead of after it, about LONG_TASK_S per case. A worker's long pool must run new tasks after
        its last reconnect (busy again), so not where the heal itself moves a connection: a split brain's heal
        moves the virtual address back, and with publishing stopped at it, a fresh clone's run failed that check."""
        self.long_publisher.stop()

    def done(self, worker: str) -> list[tuple[str, float]]:
        """(token, when) of each of this run's tasks the worker completed."""
        return completions(self.workers[worker], COMPLETED_LOG, self.prefix)

    def finished(self, expected: set[str]) -> list[tuple[str, float]]:
        """Every completion on either worker, once each expected task completed (or 120 s passed)."""

        def done() -> list[tuple[str, float]]:
            return [pair for worker in WORKERS for pair in self.done(worker)]

        wait_for(lambda: expected <= {token for token, _ in done()}, timeout=120)
        return done()

    def since(self, when: float) -> float:
        """Seconds from the fault."""
        return round(when - self.fault_at, 2)

    def task_flow(self, published: set[str], finished: list[tuple[str, float]]) -> TaskFlow:
        return TaskFlow(
            longest_stall_s=round(longest_stall([when for _, when in finished], self.fault_at, self.healed_at), 2),
            fault_held_s=round(self.healed_at - self.fault_at, 1),
            **Account(published, Counter(token for token, _ in finished)).summary(),
        )

    def long_logs(self) -> dict[str, tuple[list[Line], list[Line]]]:
        """Each worker's starts and completions of this run's long tasks."""
        prefix = self.long_publisher.prefix
        return {name: (log_lines(worker, STARTED_LOG, prefix), log_lines(worker, COMPLETED_LOG, prefix))
                for name, worker in self.workers.items()}  # fmt: skip

    def long_tasks(self) -> dict[str, LongTasks]:
        """The long tasks of the run, once each published one completed (or LONG_DRAIN_S passed): the record's
        `long_tasks` entry."""
        published = self.long_publisher.tokens()
        completed = lambda: {token for _, ends in self.long_logs().values() for token, _, _ in ends}  # noqa: E731
        wait_for(lambda: published <= completed(), timeout=LONG_DRAIN_S)
        runs = {name: executions(starts, ends) for name, (starts, ends) in self.long_logs().items()}
        every_run = [run for worker_runs in runs.values() for run in worker_runs]
        count, _ = thrown_away(every_run, LONG_TASK_S)
        # Busy again after the worker's long pool last connected in this run (or after the fault).
        after = {name: max([self.fault_at, *reconnects(worker, LONG_LOG, self.fault_at)])
                 for name, worker in self.workers.items()}  # fmt: skip
        reader = get(self.haproxy, self.queue_reader)
        prefetch: dict[str, list[int]] = {}

        def settled() -> bool:
            prefetch.update(consumer_prefetch(reader, VHOST, CONSUMER_PREFETCH))
            return prefetch == CONSUMER_PREFETCH

        # What the last read found goes in the record (the assertion is check_task_flow's).
        wait_for(settled, timeout=60, interval=2)
        return {"long_tasks": LongTasks(
            published=len(published),
            lost=len(published - {run.token for run in every_run if run.end is not None}),
            thrown_away=count,
            seconds_repeated=seconds_repeated(every_run, LONG_TASK_S),
            completed_twice=completed_twice(every_run),
            pools_busy_again={name: busy_again(worker_runs, after[name], LONG_POOL["concurrency"])
                              for name, worker_runs in runs.items()},
            consumer_prefetch=prefetch,
        )}  # fmt: skip

    def publishing(self) -> Publishing:
        return Publishing(
            publish_retries=self.publisher.errors, longest_publish_s=round(self.publisher.longest_publish_s(), 2)
        )


def check_task_flow(
    name: str, result: Flow, stall_bound_s: float, bound_words: str, publish_bound_s: float, planned: bool = False
) -> None:
    """No gap between task completions longer than the bound (`bound_words` says how it is made up); none lost;
    no single publish longer than its bound. The long tasks: none lost, each worker's consumers back at the
    prefetch its concurrency implies and its long pool busy again; a planned operation throws no work away."""
    stall = f"{name}: no task completed for {result['longest_stall_s']} s (bound {bound_words}): {result}"
    assert result["longest_stall_s"] <= stall_bound_s, stall
    assert result["tasks_lost"] == 0, f"{name}: tasks lost: {result}"
    slow = f"{name}: one publish took {result['longest_publish_s']} s (bound {publish_bound_s}): {result}"
    assert result["longest_publish_s"] <= publish_bound_s, slow
    long = result["long_tasks"]
    assert long["lost"] == 0, f"{name}: long tasks lost: {long}"
    assert long["consumer_prefetch"] == CONSUMER_PREFETCH, f"{name}: prefetch not restored: {long}"
    idle = [worker for worker, busy in long["pools_busy_again"].items() if not busy]
    assert not idle, f"{name}: the long pool of {idle} never had every process busy again: {long}"
    if planned:
        assert long["thrown_away"] == long["completed_twice"] == 0, f"{name}: work thrown away: {long}"
