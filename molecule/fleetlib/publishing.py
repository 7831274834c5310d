"""Publishing tasks from the control node, as an application's producers do."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from celery import Celery
from celery_fleet_app.config import FleetConfig, TlsConfig, connection_settings, publisher_settings
from kombu import Connection


def fleet_client(endpoints: list[str], password: str, vhost: str, queue: str, tls: TlsConfig | None) -> Celery:
    """A producer configured as the reference app's publishers are (publisher_settings: publisher confirms,
    nothing declared at run time, a socket that notices a dead proxy within seconds)."""
    config = FleetConfig(
        broker_endpoints=endpoints, user="celery", password=password, vhost=vhost, queues=[queue], tls=tls
    )
    app = Celery("publisher", set_as_current=False)
    app.conf.update(publisher_settings(config))
    return app


def defaults_client(endpoints: list[str], password: str, vhost: str, queue: str, tls: TlsConfig | None) -> Celery:
    """A producer with Celery's own defaults, every broker in its URL list (TLS as the fleet requires it)."""
    config = FleetConfig(broker_endpoints=endpoints, user="celery", password=password, vhost=vhost, tls=tls)
    app = Celery("defaults-publisher", set_as_current=False)
    app.conf.update(connection_settings(config))
    app.conf.task_default_queue = queue
    return app


@dataclass
class Publisher:
    """Publishes one uniquely named task every `interval` seconds, in a thread, on a connection of its own.

    Its own connection starts on the first endpoint of the app's list, as a new process does. Celery's pooled
    connection is shared by every app with the same broker URL in this process, and stays wherever an earlier
    run's faults moved it: a publisher on it could sit out a proxy fault on the other proxy.
    """

    app: Celery
    task: str
    prefix: str
    interval: float = 0.1
    # The task's arguments, when not the token itself (tokens are still kept for counting).
    task_args: list[object] | None = None
    # Arguments after the token (when task_args is None), e.g. how long a `work` task works.
    extra_args: list[object] = field(default_factory=list)
    # (token, when its publish began, how long it took), for those the broker accepted.
    published: list[tuple[str, float, float]] = field(default_factory=list)
    errors: int = 0
    # How long each failed attempt took before it raised (kombu's own retries inside it included).
    failed_attempts_s: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Publisher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            assert not self._thread.is_alive(), f"{self.prefix}: the publisher did not stop within 120 s"

    def tokens(self, since: float = 0.0, until: float = float("inf")) -> set[str]:
        return {token for token, when, _ in self.published if since <= when <= until}

    def publish_times(self) -> dict[str, float]:
        return {token: when for token, when, _ in self.published}

    def first_accepted_after(self, when: float) -> float:
        """When the broker first accepted (confirmed) a publish after `when`: tasks exist again from then."""
        return min((start + took for _, start, took in self.published if start + took > when), default=float("inf"))

    def longest_publish_s(self) -> float:
        """The longest single send_task call, whether the broker confirmed it or it raised in the end."""
        return max([*(took for _, _, took in self.published), *self.failed_attempts_s], default=0.0)

    def _run(self) -> None:
        with self.app.connection_for_write() as connection:
            self._publish_until_stopped(connection)

    def _publish_until_stopped(self, connection: Connection) -> None:
        number = 0
        while not self._stop.is_set():
            token, started = f"{self.prefix}-{number:05d}", time.time()
            arguments = [token, *self.extra_args] if self.task_args is None else self.task_args
            try:
                # With confirms, counted as published only once the broker confirmed it.
                self.app.send_task(self.task, args=arguments, connection=connection)
            except Exception:
                self.errors += 1
                self.failed_attempts_s.append(time.time() - started)
                self._stop.wait(0.5)
                continue
            self.published.append((token, started, time.time() - started))
            number += 1
            self._stop.wait(self.interval)
