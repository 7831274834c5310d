"""The worker's half of a handover (celery_fleet_app.handover): a consumer bootstep.

Every POLL_S it reads the request. One that targets this worker stops its consumers (basic.cancel: running and
reserved tasks still finish and ack on the same channel) and, once nothing is reserved, answers 'idle'. With
`move` it then ends its own connection, and Celery's usual reconnect takes it through the proxy to another broker,
consuming again; otherwise it waits for the operation to end the connection. A new connection consumes from every
queue, as at start. A request withdrawn or run out while the worker waits puts its consumers back on the
connection it has.

Idle means nothing reserved (Celery's reserved_requests: received, running or waiting for a pool process).
Tasks held for an ETA or a rate limit are not in it; their messages go back to the queue with the connection,
unstarted, so nothing is terminated either.

The socket is shut down rather than the connection closed: from inside the event loop that is what a broker
closing it looks like, and it takes Celery's tested reconnect path, with nothing in flight to terminate.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from celery import bootsteps
from celery.worker import state as worker_state

from celery_fleet_app import handover
from celery_fleet_app.config import HANDOVER_DIR_SETTING

log = logging.getLogger(__name__)

POLL_S = 0.2


class Handover(bootsteps.StartStopStep):
    """Finish what runs, then let the connection go (see the module's docstring)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.directory = Path(parent.app.conf.get(HANDOVER_DIR_SETTING) or handover.DEFAULT_DIRECTORY)
        self.timer_entry: Any = None
        # The request this worker acted on, and the queues it stopped consuming from for it.
        self.handled = ""
        self.paused: list[Any] = []
        self.answered = ""

    def start(self, c: Any) -> None:
        if self.paused:
            # A new connection, whatever ended the old one (with tasks still running, Celery terminated them):
            # nothing is left to wait for. Its task consumer consumes from every queue already.
            self.paused, self.answered = [], ""
            log.info("handover %s: consuming again on a new connection", self.handled)
            try:
                handover.answer(self.directory, c.hostname, self.handled, "moved")
            except OSError as exc:
                log.warning("handover %s: cannot answer in %s (%s)", self.handled, self.directory, exc)
        try:
            handover.announce(self.directory, c.hostname, os.getpid())
        except OSError as exc:
            log.warning("handover: cannot announce in %s (%s); maintenance will cut this worker's tasks",
                        self.directory, exc)  # fmt: skip
            return
        self.timer_entry = c.timer.call_repeatedly(POLL_S, self.poll, (c,))

    def stop(self, c: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    def shutdown(self, c: Any) -> None:
        """The worker stops: maintenance must not wait for it any more."""
        self.stop(c)
        handover.retire(self.directory, c.hostname)

    def poll(self, c: Any) -> None:
        request = handover.read_request(self.directory)
        now = time.time()
        if self.paused:
            if request is None or request.id != self.handled or not request.live(now):
                self.resume(c, "the request was withdrawn or ran out")
            elif not self.answered and not worker_state.reserved_requests:
                self.idle(c, request)
        elif request and request.id != self.handled and request.live(now) and request.targets(c.hostname):
            self.pause(c, request)

    def pause(self, c: Any, request: handover.Request) -> None:
        self.handled, self.answered = request.id, ""
        self.paused = list(c.task_consumer.queues)
        for queue in self.paused:
            c.task_consumer.cancel_by_queue(queue.name)
        log.info("handover %s: not taking tasks; %d reserved still finish", request.id,
                 len(worker_state.reserved_requests))  # fmt: skip

    def idle(self, c: Any, request: handover.Request) -> None:
        self.answered = "idle"
        handover.answer(self.directory, c.hostname, request.id, "idle")
        if request.move:
            log.info("handover %s: idle; reconnecting", request.id)
            # The plain socket's shutdown, under TLS too: SSLSocket's own drops its TLS state, and the next read
            # then fails with an error Celery does not recover from.
            socket.socket.shutdown(c.connection.connection.transport.sock, socket.SHUT_RDWR)
        else:
            log.info("handover %s: idle; waiting for the connection to move", request.id)

    def resume(self, c: Any, why: str) -> None:
        for queue in self.paused:
            c.task_consumer.add_queue(queue)
        c.task_consumer.consume()
        log.info("handover %s: consuming again (%s)", self.handled, why)
        self.paused, self.answered = [], ""
