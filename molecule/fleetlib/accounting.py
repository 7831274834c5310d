"""Accounting for every task: completed, lost, duplicated, late, and the longest stall."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import testinfra.host

from fleetlib.hosts import lines_with

# (token, pid, epoch): one line of the completed log (`record`) or the started log (`work`).
Line = tuple[str, int, float]


def log_lines(host: testinfra.host.Host, log: str, prefix: str) -> list[Line]:
    """The lines of a completed or started log whose token starts with prefix."""
    lines = lines_with(host, log, prefix, missing_ok=True)
    return [(token, int(pid), float(stamp)) for token, pid, stamp in (line.split() for line in lines)
            if token.startswith(prefix)]  # fmt: skip


def completions(host: testinfra.host.Host, log: str, prefix: str) -> list[tuple[str, float]]:
    """(token, epoch) of every execution of a `record` task whose token starts with prefix."""
    return [(token, when) for token, _, when in log_lines(host, log, prefix)]


def consuming_again(reconnected_at: list[float], done: list[tuple[str, float]]) -> list[float]:
    """Completion times of the tasks a worker ran after it reconnected (so through a new connection)."""
    first = min(reconnected_at, default=float("inf"))
    return sorted(when for _, when in done if when > first)


def longest_stall(completed_at: list[float], start: float, end: float) -> float:
    """The longest time between two task completions (or a window edge) within [start, end]."""
    edges = [start, *sorted(t for t in completed_at if start <= t <= end), end]
    return max(later - earlier for earlier, later in itertools.pairwise(edges))


@dataclass(frozen=True)
class Account:
    published: set[str]
    runs: Counter[str]

    @property
    def lost(self) -> set[str]:
        return self.published - set(self.runs)

    @property
    def duplicated(self) -> int:
        return sum(1 for token in self.published if self.runs[token] > 1)

    def summary(self) -> dict[str, int]:
        return {"tasks_published": len(self.published), "tasks_completed": len(set(self.runs) & self.published),
                "tasks_lost": len(self.lost), "tasks_duplicated": self.duplicated}  # fmt: skip


def late_tasks(
    published_at: dict[str, float], done: list[tuple[str, float]], before: float, after: float
) -> list[float]:
    """Delays of the tasks published before `before` that completed only after `after`.

    Those are the tasks a worker had prefetched on the connection that died:
    they come back once RabbitMQ drops that connection's channel.
    """
    first_run: dict[str, float] = {}
    for token, when in sorted(done, key=lambda pair: pair[1]):
        first_run.setdefault(token, when)
    return sorted(
        round(first_run[token] - published_at[token], 2)
        for token in first_run
        if token in published_at and published_at[token] < before and first_run[token] > after
    )
