"""One fault run on the shared stack, whatever the fault: the protected workers, a publisher through both proxies,
the tasks' completions, and what every case measures and holds of them (no stall past its bound, none lost).

test_failover.py (broker faults) and test_proxy_faults.py (proxy faults) extend it.
"""

from __future__ import annotations

import uuid
from collections import Counter

import testinfra.host
from failover_results import Flow, Publishing, TaskFlow
from faults import COMPLETED_LOG, WORKERS
from fleetlib.accounting import Account, completions, longest_stall
from fleetlib.hosts import get
from fleetlib.publishing import Publisher
from fleetlib.waits import wait_for
from stack import fleet_publisher

TASK = "celery_fleet_app.tasks.record"


class FaultRun:
    """The workers (by name), the publisher of this run's tasks, and when the fault began and healed."""

    def __init__(self, haproxy: testinfra.host.Host, label: str) -> None:
        self.haproxy = haproxy
        self.workers = {name: get(haproxy, name) for name in WORKERS}
        self.prefix = f"{label}-{uuid.uuid4().hex[:6]}"
        app = fleet_publisher(haproxy, "celery")
        self.publisher = Publisher(app, TASK, self.prefix)
        self.fault_at = self.healed_at = 0.0

    def done(self, worker: str) -> list[tuple[str, float]]:
        """(token, when) of each of this run's tasks the worker completed."""
        return completions(self.workers[worker], COMPLETED_LOG, self.prefix)

    def finished(self, expected: set[str]) -> list[tuple[str, float]]:
        """Every completion on either worker, once each expected task completed (or 120 s passed)."""

        def done() -> list[tuple[str, float]]:
            return [pair for worker in WORKERS for pair in self.done(worker)]

        wait_for(lambda: expected <= {token for token, _ in done()}, timeout=120, interval=2)
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

    def publishing(self) -> Publishing:
        return Publishing(
            publish_retries=self.publisher.errors, longest_publish_s=round(self.publisher.longest_publish_s(), 2)
        )


def check_task_flow(name: str, result: Flow, stall_bound_s: float, bound_words: str, publish_bound_s: float) -> None:
    """No gap between task completions longer than the bound (`bound_words` says how it is made up); none lost;
    no single publish longer than its bound."""
    stall = f"{name}: no task completed for {result['longest_stall_s']} s (bound {bound_words}): {result}"
    assert result["longest_stall_s"] <= stall_bound_s, stall
    assert result["tasks_lost"] == 0, f"{name}: tasks lost: {result}"
    slow = f"{name}: one publish took {result['longest_publish_s']} s (bound {publish_bound_s}): {result}"
    assert result["longest_publish_s"] <= publish_bound_s, slow
