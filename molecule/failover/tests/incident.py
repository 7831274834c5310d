"""The runs beside ours during the long blackhole: the incident's control, and Celery's defaults (the anchor).

- The control worker is connected straight to the faulted broker with the
  incident's settings (no heartbeat, the kernel's socket defaults): it must
  stay frozen, which shows what the proxy fixes.
- The anchor worker and publisher use Celery's own defaults with all three
  brokers in the URL list, no proxy: what a team gets without this project.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import testinfra.host
from failover_results import AnchorRun, ControlRun
from faults import BROKERS, COMPLETED_LOG, VHOST, WORKER
from fleetlib.accounting import Account, completions, consuming_again, longest_stall
from fleetlib.brokers import queue_messages
from fleetlib.captures import start_capture, stop_capture
from fleetlib.hosts import established, get, log_times, reconnects, restart_pool, root
from fleetlib.publishing import Publisher
from fleetlib.waits import wait_for

CONTROL, ANCHOR = "fo-control-worker", "fo-anchor-worker"
# The anchor app's queue (celery_fleet_app.anchor: task_default_queue).
ANCHOR_QUEUE = "anchor"
CONTROL_LOG = f"{WORKER['celery_worker_log_dir']}/celery-control-00.log"
ANCHOR_LOG = f"{WORKER['celery_worker_log_dir']}/celery-anchor-00.log"


@dataclass
class IncidentRun:
    """A worker beside ours, its publisher, and what it does from the fault on."""

    host: testinfra.host.Host
    program: str
    log: str
    publisher: Publisher
    fault_at: float = 0.0

    def prepare(self) -> None:
        """A fresh start, so the run begins on a live connection; publishing until it is consumed."""
        restart_pool(self.host, self.program, self.log)
        self.publisher.start()
        assert wait_for(lambda: self._done(), timeout=60), f"{self.program} completed nothing before the fault"

    def _done(self) -> list[tuple[str, float]]:
        return completions(self.host, COMPLETED_LOG, self.publisher.prefix)


@dataclass
class Control(IncidentRun):
    target_ip: str = ""
    window_s: float = 0.0
    samples: list[bool] = field(default_factory=list)
    _watcher: threading.Thread | None = None

    def watch(self, fault_at: float, window_s: float) -> None:
        """From the fault on, sample the control's socket every second, in a thread, until the window ends."""
        self.fault_at, self.window_s = fault_at, window_s
        start_capture(self.host, "control", f"tcp and host {self.target_ip} and tcp[tcpflags] & tcp-rst != 0")
        self._watcher = threading.Thread(target=self._sample, daemon=True)
        self._watcher.start()

    def _sample(self) -> None:
        while time.time() < self.fault_at + self.window_s:
            self.samples.append(established(self.host, self.target_ip))
            time.sleep(1)

    def result(self) -> ControlRun:
        """What the window showed (waits for its end)."""
        assert self._watcher is not None
        self._watcher.join()
        self.publisher.stop()
        # Only tasks sent once the fault was in place (none of them can have
        # reached the worker), completed within the window (before the heal).
        published = self.publisher.tokens(since=self.fault_at + 1)
        window_end = self.fault_at + self.window_s
        completed = {token for token, when in self._done() if token in published and when <= window_end}
        status = root(self.host, "supervisorctl status").split()
        return ControlRun(
            window_s=self.window_s,
            rst_packets=len([p for p in stop_capture(self.host, "control") if p.when >= self.fault_at]),
            socket_samples=len(self.samples),
            socket_established_throughout=bool(self.samples) and all(self.samples),
            # "Connection to broker lost", "Cannot connect", "Connected to": any sign it noticed.
            connection_log_records_after_fault=len(
                [t for t in log_times(self.host, self.log, "onnect") if t >= self.fault_at]
            ),
            supervisor_status=status[1] if len(status) > 1 else "",
            tasks_published_in_window=len(published),
            tasks_completed_in_window=len(completed),
            tasks_waiting_in_queue=queue_messages(get(self.host, BROKERS[1]), VHOST, "control"),
        )


@dataclass
class Anchor(IncidentRun):
    def result(self, fault: str, until: float) -> AnchorRun:
        self.publisher.stop()
        published = self.publisher.tokens()
        # Without confirms, a task is "published" once send_task returned:
        # those written into a dead socket are lost, which is the point. The
        # rest are done once none is left in the queue, ready or unacked, and
        # no completion came since the last look (the anchor acks a task as it
        # starts it).
        broker, seen = get(self.host, BROKERS[1]), -1

        def settled() -> bool:
            nonlocal seen
            done = {token for token, _ in self._done()}
            quiet = len(done) == seen and queue_messages(broker, VHOST, ANCHOR_QUEUE) == 0
            seen = len(done)
            return published <= done or quiet

        wait_for(settled, timeout=30, interval=2)
        done = self._done()
        reconnected = reconnects(self.host, self.log, self.fault_at)
        consuming = consuming_again(reconnected, done)
        return AnchorRun(
            fault=fault,
            time_to_reconnect_s=round(min(reconnected) - self.fault_at, 2) if reconnected else None,
            time_to_consuming_s=round(consuming[0] - self.fault_at, 2) if consuming else None,
            longest_stall_s=round(longest_stall([when for _, when in done], self.fault_at, until), 2),
            window_s=round(until - self.fault_at, 1),
            **Account(published, Counter(token for token, _ in done)).summary(),
            publish_errors=self.publisher.errors,
        )
