"""Tasks that run for seconds, through a fault: which runs were thrown away, which ran twice, and whether each
worker's pool is busy again afterwards.

The reference app's `work` task notes "token pid epoch" in started.log when it starts and, through `record`, in
completed.log when it ends (both read with fleetlib.accounting.log_lines). A run is a start paired with the
completion of the same token by the same process; a start without one was terminated (or its process died) before
it finished.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import testinfra.host

from fleetlib.accounting import Line
from fleetlib.brokers import rabbitmqctl_json


@dataclass(frozen=True)
class Execution:
    token: str
    pid: int
    start: float
    # None: it never completed (terminated, or its process died).
    end: float | None


def executions(starts: list[Line], completions: list[Line]) -> list[Execution]:
    """Each start, with the first completion of the same token by the same process after it."""
    runs = []
    ends = sorted(completions, key=lambda line: line[2])
    used: set[int] = set()
    for token, pid, start in sorted(starts, key=lambda line: line[2]):
        found = next((i for i, (t, p, when) in enumerate(ends)
                      if i not in used and t == token and p == pid and when >= start), None)  # fmt: skip
        if found is not None:
            used.add(found)
        runs.append(Execution(token, pid, start, ends[found][2] if found is not None else None))
    return runs


def thrown_away(runs: list[Execution], task_s: float) -> tuple[int, float]:
    """How many runs never completed, and the seconds of work they had done: from each one's start to the next
    start of its token (when it began again), at most the task's length."""
    by_token: dict[str, list[Execution]] = {}
    for run in sorted(runs, key=lambda run: run.start):
        by_token.setdefault(run.token, []).append(run)
    count, seconds = 0, 0.0
    for token_runs in by_token.values():
        for run, following in zip(token_runs, [*token_runs[1:], None], strict=True):
            if run.end is None:
                count += 1
                seconds += min(task_s, (following.start - run.start) if following else task_s)
    return count, round(seconds, 2)


def seconds_repeated(runs: list[Execution], task_s: float) -> float:
    """Seconds of work done again: what each thrown-away run had done, and each completion after a token's first
    (a run finished, but its ack was lost with the connection)."""
    completions = Counter(run.token for run in runs if run.end is not None)
    return round(thrown_away(runs, task_s)[1] + task_s * sum(count - 1 for count in completions.values()), 2)


def completed_twice(runs: list[Execution]) -> int:
    """Tokens that completed more than once (an ack lost with the connection: the work was done again)."""
    return sum(1 for count in Counter(run.token for run in runs if run.end is not None).values() if count > 1)


def busy_again(runs: list[Execution], after: float, slots: int) -> bool:
    """Whether, at some moment after `after`, `slots` completed runs were under way at once (every pool process
    of the worker busy)."""
    spans = [(run.start, run.end) for run in runs if run.end is not None and run.start >= after]
    return any(sum(1 for start, end in spans if start <= moment < end) >= slots for moment, _ in spans)


def consumer_prefetch(broker: testinfra.host.Host, vhost: str, queues: Iterable[str]) -> dict[str, list[int]]:
    """The prefetch count of every consumer of each queue, as the broker holds them (sorted): one rabbitmqctl."""
    rows = cast(list[dict[str, Any]], rabbitmqctl_json(broker, "list_consumers", "--vhost", vhost, "queue_name",
                                                      "prefetch_count"))  # fmt: skip
    return {queue: sorted(int(row["prefetch_count"]) for row in rows if row["queue_name"] == queue) for queue in queues}
