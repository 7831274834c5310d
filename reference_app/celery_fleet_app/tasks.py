"""Tasks of the reference app: real work for the tests, including a deliberate leak."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO

from celery_fleet_app.celery import app
from celery_fleet_app.config import load_config

# Files opened by leak_descriptors and never closed: the leak under test.
_leaked: list[IO[bytes]] = []


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task
def record(token: str) -> str:
    """Append the token to the completed-tasks log, one line per execution.

    The failover tests count lines per token: none missing means no task was
    lost, more than one means a redelivery (acks_late is at-least-once).
    """
    line = f"{token} {os.getpid()} {time.time():.3f}\n"
    with Path(load_config().completed_log).open("a") as log:
        log.write(line)
    return token


def started_log() -> Path:
    """Where `work` notes each start: beside the completed-tasks log."""
    return Path(load_config().completed_log).with_name("started.log")


@app.task
def work(token: str, seconds: float) -> str:
    """Note the start, work for `seconds` (real tasks take time), then record the token as `record` does.

    A task in flight when its worker stops or loses its connection: a start with no completion was thrown
    away, two starts mean it ran again.
    """
    with started_log().open("a") as log:
        log.write(f"{token} {os.getpid()} {time.time():.3f}\n")
    time.sleep(seconds)
    return record(token)


@app.task
def leak_descriptors(count: int = 5) -> int:
    """Open files and never close them, as buggy task code does."""
    _leaked.extend(Path("/dev/null").open("rb") for _ in range(count))  # noqa: SIM115
    return len(_leaked)
