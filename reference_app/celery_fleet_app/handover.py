#!/usr/bin/python3
"""Hand a worker's broker connection over without throwing away the tasks it runs.

A connection that ends under a running task ends the task: Celery terminates it and the broker runs it again from
the start (worker_cancel_long_running_tasks_on_connection_loss). Maintenance knows in advance which connections it
will end, so it asks their workers first: stop taking tasks, finish the ones running, and only then let the
connection go. Two ways, chosen by whoever asks:

- move: once idle, the worker closes its connection itself and reconnects at once, so it takes tasks again within
  a moment. For a broker about to be drained: HAProxy already sends new connections elsewhere.
- wait: once idle, the worker waits for the operation to end its connection (a proxy handing its virtual address
  over) and takes tasks again on the new one.

Either way a worker takes tasks again when the request is withdrawn or runs out (`until`), so a playbook that dies
half-way never leaves a fleet paused.

This file is both halves of the protocol, on files in one directory (/run/celery-fleet/handover):
- the request, `request.json`, written by the maintenance playbooks through the command line below
  (`celery-fleet-handover begin|wait|end`, installed by the celery_worker role);
- each worker's answer, `<node>.node` (its pid, while it runs) and `<node>.state` (the request it is ready for),
  written by the worker's bootstep (celery_fleet_app.handover_step).
Standard library only: the command line runs with the system's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DIRECTORY = Path("/run/celery-fleet/handover")
REQUEST = "request.json"
# How often the command line looks at the workers' answers while it waits.
POLL_S = 0.2
# Every file here is a line or two of JSON.
MAX_FILE_BYTES = 65536


@dataclass(frozen=True)
class Request:
    """What maintenance asks: which workers (None: all on the host), until when at most, and how."""

    id: str
    until: float
    nodes: list[str] | None = None
    move: bool = False
    # When maintenance stops waiting for the workers, on every host alike (0: not set).
    wait_until: float = 0.0

    def targets(self, node: str) -> bool:
        return self.nodes is None or node in self.nodes

    def live(self, now: float) -> bool:
        return now < self.until


def write_atomically(path: Path, text: str) -> None:
    """Readers never see half a file: write a new file beside it, then rename it over the old one.

    The directory belongs to the workers' user and this also runs as root: the new file is created exclusively
    (a link planted in its place makes it fail, not write through), and the rename replaces a link, never follows.
    """
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as output:
            os.fchmod(output.fileno(), 0o644)
            output.write(text)
        Path(partial).replace(path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def read_small(path: Path) -> str:
    """A regular file's text; a link, a FIFO or anything else planted there raises OSError instead of being
    followed or blocking."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path} is not a regular file")
        return handle.read(MAX_FILE_BYTES).decode("utf-8")


def read_request(directory: Path) -> Request | None:
    """The request in force, if any (a half-written or foreign file counts as none)."""
    try:
        values = json.loads(read_small(directory / REQUEST))
        request = Request(**values)
    except (OSError, ValueError, TypeError):
        return None
    nodes_ok = request.nodes is None or (
        isinstance(request.nodes, list) and all(isinstance(node, str) for node in request.nodes)
    )
    well_typed = (
        isinstance(request.id, str)
        and all(isinstance(value, int | float) and not isinstance(value, bool)
                for value in (request.until, request.wait_until))
        and isinstance(request.move, bool)
    )  # fmt: skip
    return request if nodes_ok and well_typed else None


def write_request(directory: Path, request: Request) -> None:
    write_atomically(directory / REQUEST, json.dumps(asdict(request)))


def withdraw(directory: Path, request_id: str) -> bool:
    """Remove the request if it is still this one; True when it was."""
    current = read_request(directory)
    if current is None or current.id != request_id:
        return False
    (directory / REQUEST).unlink(missing_ok=True)
    return True


def announce(directory: Path, node: str, pid: int) -> None:
    """A worker that can hand over says so at start (the command line waits only for those)."""
    write_atomically(directory / f"{node}.node", str(pid))


def retire(directory: Path, node: str) -> None:
    """A worker that stops takes its announcement back."""
    (directory / f"{node}.node").unlink(missing_ok=True)


def answer(directory: Path, node: str, request_id: str, state: str) -> None:
    """A worker's state for a request: 'idle' (nothing running, not taking tasks) or 'moved' (on a new
    connection, nothing was running when the old one went)."""
    write_atomically(directory / f"{node}.state", json.dumps({"id": request_id, "state": state}))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_nodes(directory: Path) -> list[str]:
    """Nodes whose worker announced itself and still runs."""
    nodes = []
    for path in sorted(directory.glob("*.node")):
        try:
            pid = int(read_small(path))
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            nodes.append(path.name.removesuffix(".node"))
    return nodes


def node_state(directory: Path, node: str, request_id: str) -> str:
    """The node's answer to this request: 'idle', 'moved' or '' (none yet)."""
    try:
        values = json.loads(read_small(directory / f"{node}.state"))
    except (OSError, ValueError):
        return ""
    if not isinstance(values, dict) or values.get("id") != request_id:
        return ""
    state = values.get("state", "")
    return state if isinstance(state, str) else ""


def ready(request: Request, state: str) -> bool:
    """Whether a node's answer is the one maintenance waits for."""
    return state == "moved" if request.move else state in ("idle", "moved")


def progress(directory: Path, request: Request) -> dict[str, list[str]]:
    """The targeted running workers on this host, split into ready and not yet."""
    targeted = [node for node in running_nodes(directory) if request.targets(node)]
    done = [node for node in targeted if ready(request, node_state(directory, node, request.id))]
    return {"ready": done, "busy": [node for node in targeted if node not in done]}


def wait(directory: Path, request: Request, timeout_s: float) -> dict[str, object]:
    """Wait until every targeted worker is ready, or the timeout, or the request's wait_until (so that hosts
    waited for one after another share one bound): what remains busy then will be cut."""
    started = time.monotonic()
    if request.wait_until:
        timeout_s = min(timeout_s, max(0.0, request.wait_until - time.time()))
    while True:
        found = progress(directory, request)
        if not found["busy"] or time.monotonic() - started >= timeout_s:
            return {**found, "waited_s": round(time.monotonic() - started, 2)}
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="celery-fleet-handover", description=__doc__.splitlines()[0])
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY)
    commands = parser.add_subparsers(dest="command", required=True)
    begin = commands.add_parser("begin", help="ask the workers to finish their tasks and take no new ones")
    begin.add_argument("--id", required=True)
    begin.add_argument("--for-s", type=float, required=True, help="the request runs out after this long")
    begin.add_argument("--node", action="append", help="only this worker (repeat); default: every one")
    begin.add_argument("--move", action="store_true", help="reconnect once idle, do not wait to be cut")
    begin.add_argument("--wait-s", type=float, default=0.0, help="stop waiting for the workers this long from now")
    waiting = commands.add_parser("wait", help="wait until the workers asked are ready to be cut")
    waiting.add_argument("--id", required=True)
    waiting.add_argument("--timeout-s", type=float, required=True, help="wait at most this long")
    end = commands.add_parser("end", help="withdraw the request: the workers take tasks again")
    end.add_argument("--id", required=True)
    args = parser.parse_args(argv)
    if args.command == "begin":
        now = time.time()
        request = Request(
            id=args.id,
            until=now + args.for_s,
            nodes=args.node,
            move=args.move,
            wait_until=now + args.wait_s if args.wait_s else 0.0,
        )
        targeted = [node for node in running_nodes(args.directory) if request.targets(node)]
        if targeted:
            write_request(args.directory, request)
        result: dict[str, object] = {"requested": targeted}
    elif args.command == "wait":
        request = read_request(args.directory)
        if request is None or request.id != args.id:
            result = {"ready": [], "busy": [], "waited_s": 0.0, "error": f"no request {args.id} in force"}
        else:
            result = wait(args.directory, request, args.timeout_s)
    else:
        result = {"withdrawn": withdraw(args.directory, args.id)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
