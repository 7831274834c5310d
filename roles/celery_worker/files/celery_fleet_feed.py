#!/usr/bin/python3
"""Write the Celery workers' state for node_exporter's textfile collector.

Per Supervisor program: whether it runs and for how long; per Celery process
(the main process and its pool): open descriptors and their limit. Remote
control is off in this fleet, so nothing here asks the workers: Supervisor
(over its XML-RPC socket, as supervisorctl does) and /proc answer. Tasks
completed come from the brokers' per-queue ack counters, which Prometheus
scrapes there.

Run by celery-fleet-feed.service as one long-lived process: a timer starting
this script, which started supervisorctl, cost each worker host a
third of a CPU-second per write, 5% of a core at a 5 s interval. A pass that
fails writes nothing, so the file's timestamp goes stale and CeleryFeedStale
says so; the next pass tries again.

Usage: celery-fleet-feed [--every SECONDS] --socket PATH DIRECTORY
(writes DIRECTORY/celery_fleet.prom atomically; once without --every).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

# Debian's supervisor package, for the python3 that runs supervisord itself.
from supervisor.xmlrpc import SupervisorTransport

# The collection's module_utils, installed beside this script by the role.
sys.path.insert(0, "/usr/local/lib/celery-fleet")
from diagnosis import is_celery_worker, metric_line, open_files_limit, supervisor_rpc_programs
from procfs import children_of, fd_count, proc_read, worker_process

HELP = {
    "celery_fleet_supervisor_program_up": (
        "gauge",
        "1 if the program is RUNNING; labelled with its state.",
    ),
    "celery_fleet_supervisor_program_uptime_seconds": ("gauge", "Seconds since Supervisor started the program."),
    "celery_fleet_process_open_fds": ("gauge", "Open descriptors of a Celery process (main or pool)."),
    "celery_fleet_process_max_fds": ("gauge", "The process's soft limit of open descriptors."),
    "celery_fleet_feed_timestamp_seconds": ("gauge", "When this file was written (Unix time)."),
}


def process_info(socket: str) -> list[dict[str, Any]]:
    """Supervisor's getAllProcessInfo(), on a connection of its own (supervisord may have restarted since)."""
    transport = SupervisorTransport(None, None, f"unix://{socket}")
    try:
        # The host part is ignored: the transport talks to the socket.
        return xmlrpc.client.ServerProxy("http://localhost", transport=transport).supervisor.getAllProcessInfo()
    finally:
        # SupervisorTransport keeps its connection where xmlrpc's Transport.close() does not look.
        if transport.connection:
            transport.connection.close()


def lines_now(socket: str) -> list[str]:
    samples: dict[str, list[str]] = {name: [] for name in HELP}

    def add(name: str, value: float, **labels: object) -> None:
        samples[name].append(metric_line(name, value, **labels))

    for program in supervisor_rpc_programs(process_info(socket)):
        name, state = program["name"], program["state"]
        add("celery_fleet_supervisor_program_up", int(state == "RUNNING"), program=name, state=state)
        add("celery_fleet_supervisor_program_uptime_seconds", program["uptime_s"], program=name)
        main = worker_process(program["pid"], is_celery_worker) if program["pid"] else 0
        if not main:
            continue
        for pid, role in [(main, "main"), *((child, "pool") for child in children_of(main))]:
            add("celery_fleet_process_open_fds", fd_count(pid), program=name, pid=pid, role=role)
            limit = open_files_limit(proc_read(pid, "limits"))
            add("celery_fleet_process_max_fds", limit, program=name, pid=pid, role=role)
    add("celery_fleet_feed_timestamp_seconds", time.time())
    out = []
    for name, (kind, text) in HELP.items():
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples[name]]
    return out


def write(directory: Path, socket: str) -> None:
    text = "\n".join(lines_now(socket)) + "\n"
    # Written beside its final name, then renamed: node_exporter never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".celery_fleet.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    Path(temporary).chmod(0o644)
    Path(temporary).replace(directory / "celery_fleet.prom")


def every(seconds: float, directory: Path, socket: str) -> None:
    """A pass every `seconds` on the monotonic clock; a failed pass is logged (to the journal) and skipped."""
    due = time.monotonic()
    while True:
        try:
            write(directory, socket)
        # Whatever a pass meets (a socket error, half an HTTP or XML answer from a supervisord going down), the
        # next pass tries again: the process stays, and the stale timestamp is what reports it.
        except Exception as error:
            print(f"no feed this pass: {error!r}", file=sys.stderr, flush=True)
        # After a pass slower than the interval, start again from now rather than run the missed ones back to back.
        due = max(due + seconds, time.monotonic())
        time.sleep(max(0.0, due - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--every", type=float, help="seconds between two writes (default: write once)")
    parser.add_argument("--socket", required=True, help="supervisord's unix socket")
    args = parser.parse_args()
    if args.every:
        every(args.every, args.directory, args.socket)
    else:
        write(args.directory, args.socket)


if __name__ == "__main__":
    main()
