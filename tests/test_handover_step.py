"""The worker's half of a handover (celery_fleet_app.handover_step), driven with a consumer of small fakes."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker import state as worker_state
from celery_fleet_app import handover
from celery_fleet_app.config import HANDOVER_DIR_SETTING
from celery_fleet_app.handover_step import POLL_S, Handover

NODE = "default00@fo-worker-1"


@dataclass
class Queue:
    name: str


@dataclass
class TaskConsumer:
    """The calls the step makes on kombu's Consumer, recorded."""

    queues: list[Queue] = field(default_factory=lambda: [Queue("celery"), Queue("long")])
    calls: list[tuple[str, str]] = field(default_factory=list)

    def cancel_by_queue(self, name: str) -> None:
        self.calls.append(("cancel_by_queue", name))
        self.queues = [queue for queue in self.queues if queue.name != name]

    def add_queue(self, queue: Queue) -> None:
        self.calls.append(("add_queue", queue.name))
        self.queues.append(queue)

    def consume(self) -> None:
        self.calls.append(("consume", ""))


@dataclass
class Entry:
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class Timer:
    entries: list[tuple[float, Callable[..., None], tuple[Any, ...], Entry]] = field(default_factory=list)

    def call_repeatedly(self, secs: float, fun: Callable[..., None], args: tuple[Any, ...] = ()) -> Entry:
        entry = Entry()
        self.entries.append((secs, fun, args, entry))
        return entry


@dataclass
class Consumer:
    sock: socket.socket
    hostname: str = NODE
    timer: Timer = field(default_factory=Timer)
    task_consumer: TaskConsumer = field(default_factory=TaskConsumer)

    @property
    def connection(self) -> Any:
        return SimpleNamespace(connection=SimpleNamespace(transport=SimpleNamespace(sock=self.sock)))


@pytest.fixture
def peer() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The worker's end of its broker connection, and the broker's."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def consumer(peer: tuple[socket.socket, socket.socket]) -> Consumer:
    return Consumer(sock=peer[0])


@pytest.fixture
def reserved(monkeypatch: pytest.MonkeyPatch) -> set[object]:
    """The worker's reserved requests (running ones included)."""
    requests: set[object] = set()
    monkeypatch.setattr(worker_state, "reserved_requests", requests)
    return requests


@pytest.fixture
def step(tmp_path: Path) -> Handover:
    parent = SimpleNamespace(app=SimpleNamespace(conf={HANDOVER_DIR_SETTING: str(tmp_path)}))
    return Handover(parent)


def ask(directory: Path, *, rid: str = "r1", move: bool = False, nodes: list[str] | None = None) -> None:
    handover.write_request(directory, handover.Request(id=rid, until=time.time() + 60, nodes=nodes, move=move))


def state(directory: Path) -> dict[str, str] | None:
    path = directory / f"{NODE}.state"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def cut(sock: socket.socket) -> bool:
    """Whether the worker's end was shut down, as the broker's end sees it."""
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False


def cancelled(c: Consumer) -> list[str]:
    return [name for call, name in c.task_consumer.calls if call == "cancel_by_queue"]


def test_the_directory_comes_from_the_app_or_the_default(tmp_path: Path) -> None:
    assert Handover(SimpleNamespace(app=SimpleNamespace(conf={HANDOVER_DIR_SETTING: str(tmp_path)}))).directory == (
        tmp_path
    )
    assert Handover(SimpleNamespace(app=SimpleNamespace(conf={}))).directory == handover.DEFAULT_DIRECTORY


def test_start_announces_the_worker_and_polls_until_stopped(step: Handover, consumer: Consumer, tmp_path: Path) -> None:
    step.start(consumer)
    assert (tmp_path / f"{NODE}.node").read_text(encoding="utf-8") == str(os.getpid())
    assert handover.running_nodes(tmp_path) == [NODE]
    ((secs, fun, args, entry),) = consumer.timer.entries
    assert (secs, fun, args) == (POLL_S, step.poll, (consumer,))
    step.stop(consumer)
    assert entry.cancelled
    assert step.timer_entry is None
    step.shutdown(consumer)


def test_a_worker_that_cannot_announce_does_not_poll(consumer: Consumer, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    step = Handover(SimpleNamespace(app=SimpleNamespace(conf={HANDOVER_DIR_SETTING: str(tmp_path / "file")})))
    step.start(consumer)
    assert consumer.timer.entries == []
    step.stop(consumer)


def test_no_request_or_one_for_another_node_is_ignored(
    step: Handover, consumer: Consumer, reserved: set[object], tmp_path: Path
) -> None:
    step.poll(consumer)
    ask(tmp_path, nodes=["default00@fo-worker-2"])
    step.poll(consumer)
    handover.write_request(tmp_path, handover.Request(id="r2", until=time.time() - 1))
    step.poll(consumer)
    assert consumer.task_consumer.calls == []
    assert state(tmp_path) is None


def test_a_request_pauses_the_worker_and_it_answers_idle_once_nothing_is_reserved(
    step: Handover, consumer: Consumer, reserved: set[object], peer: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    running = object()
    reserved.add(running)
    ask(tmp_path, nodes=[NODE])
    step.poll(consumer)
    assert cancelled(consumer) == ["celery", "long"]
    step.poll(consumer)
    assert state(tmp_path) is None
    reserved.discard(running)
    step.poll(consumer)
    assert state(tmp_path) == {"id": "r1", "state": "idle"}
    # Without move the worker waits for the operation to end its connection.
    assert not cut(peer[1])
    step.poll(consumer)
    assert cancelled(consumer) == ["celery", "long"]
    assert not cut(peer[1])


def test_with_move_the_idle_worker_shuts_its_socket_down(
    step: Handover, consumer: Consumer, reserved: set[object], peer: tuple[socket.socket, socket.socket], tmp_path: Path
) -> None:
    reserved.add(object())
    ask(tmp_path, move=True)
    step.poll(consumer)
    assert not cut(peer[1])
    reserved.clear()
    step.poll(consumer)
    assert state(tmp_path) == {"id": "r1", "state": "idle"}
    assert cut(peer[1])
    # Once only: the next poll, before the reconnect, does nothing.
    step.poll(consumer)
    assert cancelled(consumer) == ["celery", "long"]


@pytest.mark.parametrize("how", ["withdrawn", "ran out", "replaced"])
def test_a_request_gone_puts_the_consumers_back(
    step: Handover, consumer: Consumer, reserved: set[object], tmp_path: Path, how: str
) -> None:
    reserved.add(object())
    ask(tmp_path)
    step.poll(consumer)
    assert consumer.task_consumer.queues == []
    if how == "withdrawn":
        assert handover.withdraw(tmp_path, "r1")
    elif how == "ran out":
        handover.write_request(tmp_path, handover.Request(id="r1", until=time.time() - 1))
    else:
        ask(tmp_path, rid="r2")
    step.poll(consumer)
    assert consumer.task_consumer.calls[2:] == [("add_queue", "celery"), ("add_queue", "long"), ("consume", "")]
    assert [queue.name for queue in consumer.task_consumer.queues] == ["celery", "long"]
    assert step.paused == []
    assert state(tmp_path) is None


def test_a_replacing_request_pauses_the_worker_again(
    step: Handover, consumer: Consumer, reserved: set[object], tmp_path: Path
) -> None:
    ask(tmp_path)
    step.poll(consumer)
    step.poll(consumer)
    assert state(tmp_path) == {"id": "r1", "state": "idle"}
    ask(tmp_path, rid="r2")
    step.poll(consumer)  # resumes
    step.poll(consumer)  # pauses for r2
    step.poll(consumer)  # answers r2
    assert cancelled(consumer) == ["celery", "long", "celery", "long"]
    assert state(tmp_path) == {"id": "r2", "state": "idle"}


def test_the_new_connection_answers_moved_and_is_not_paused_again(
    step: Handover, consumer: Consumer, reserved: set[object], tmp_path: Path
) -> None:
    step.start(consumer)
    ask(tmp_path, move=True)
    step.poll(consumer)
    step.poll(consumer)
    assert state(tmp_path) == {"id": "r1", "state": "idle"}
    # Celery's reconnect: the steps stop, and start again on a new connection, consuming from every queue.
    step.stop(consumer)
    reconnected = Consumer(sock=consumer.sock)
    step.start(reconnected)
    assert state(tmp_path) == {"id": "r1", "state": "moved"}
    assert step.paused == []
    assert len(reconnected.timer.entries) == 1
    step.poll(reconnected)
    step.poll(reconnected)
    assert reconnected.task_consumer.calls == []
    request = handover.read_request(tmp_path)
    assert request is not None
    assert handover.progress(tmp_path, request) == {"ready": [NODE], "busy": []}


def test_a_connection_lost_while_tasks_still_ran_answers_moved(
    step: Handover, consumer: Consumer, reserved: set[object], tmp_path: Path
) -> None:
    """Ended under a running task (Celery terminated it): nothing is left to wait for, on the new connection."""
    step.start(consumer)
    reserved.add(object())
    ask(tmp_path)
    step.poll(consumer)
    assert state(tmp_path) is None
    step.stop(consumer)
    step.start(Consumer(sock=consumer.sock))
    assert state(tmp_path) == {"id": "r1", "state": "moved"}
    assert step.paused == []
