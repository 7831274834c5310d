"""What the monitoring tier shows: when each alert first fired in Alertmanager and when it went away, and
Prometheus's samples of a query over a time range.

A background thread polls Alertmanager's API (`/api/v2/alerts`, active only)
twice a second and keeps, per alert (its name and labels), the first and the
last time it was seen. Times are `time.monotonic()`, as the tests' fault
times are.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

POLL_S = 0.5


@dataclass
class Seen:
    labels: dict[str, str]
    first: float
    last: float


@dataclass
class AlertWatch:
    """Polls Alertmanager at `url` (http://host:port) until stopped."""

    url: str
    seen: list[Seen] = field(default_factory=list)
    errors: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def active(self) -> list[dict[str, str]]:
        """The labels of every active alert now."""
        query = "/api/v2/alerts?active=true&silenced=false&inhibited=false"
        with urllib.request.urlopen(self.url + query, timeout=2) as answer:
            return [alert["labels"] for alert in json.load(answer)]

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                now_active = self.active()
            except OSError:
                self.errors += 1
                now_active = []
            now = time.monotonic()
            with self._lock:
                for labels in now_active:
                    known = next((s for s in self.seen if s.labels == labels and now - s.last <= 2 * POLL_S + 2), None)
                    if known:
                        known.last = now
                    else:
                        self.seen.append(Seen(labels, now, now))
            self._stop.wait(POLL_S)

    def start(self) -> AlertWatch:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def seen_since(self, since: float) -> list[Seen]:
        """Every alert first seen at or after `since`."""
        with self._lock:
            return [s for s in self.seen if s.first >= since]

    def matching(self, name: str, labels: Mapping[str, str], since: float) -> list[Seen]:
        """The sightings of alert `name` whose labels include `labels`, first seen at or after `since`."""
        with self._lock:
            return [s for s in self.seen if s.labels.get("alertname") == name and s.first >= since
                    and all(s.labels.get(key) == value for key, value in labels.items())]  # fmt: skip

    def firing(self, name: str, labels: Mapping[str, str], since: float) -> bool:
        """Whether the alert is active now (seen in the last poll or two), first fired after `since`."""
        now = time.monotonic()
        return any(now - s.last <= 2 * POLL_S + 1 for s in self.matching(name, labels, since))

    def fired_after(self, name: str, labels: Mapping[str, str], since: float) -> float | None:
        """Seconds from `since` until the alert was first seen, None if it was not."""
        found = self.matching(name, labels, since)
        return round(min(s.first for s in found) - since, 1) if found else None

    def resolved_after(self, name: str, labels: Mapping[str, str], since: float, healed: float) -> float | None:
        """Seconds from `healed` until the alert, fired after `since`, was last seen; None if it still fires."""
        found = self.matching(name, labels, since)
        if not found or self.firing(name, labels, since):
            return None
        return round(max(0.0, max(s.last for s in found) - healed), 1)


def query_range(url: str, expr: str, start: float, end: float, step: float = 1.0) -> list[tuple[float, float]]:
    """(epoch, value) of the query's first series at every step from start to end, from Prometheus at `url`."""
    query = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=10) as answer:
        series = json.load(answer)["data"]["result"]
    return [(float(when), float(value)) for when, value in series[0]["values"]] if series else []
