#!/usr/bin/python3
"""Write the Celery workers' state for node_exporter's textfile collector, once.

Run by celery-fleet-feed.timer. Per Supervisor program: whether it runs and
for how long; per Celery process (the main process and its pool): open
descriptors and their limit. Remote control is off in this fleet, so nothing
here asks the workers: Supervisor and /proc answer. Tasks completed come from
the brokers' per-queue ack counters, which Prometheus scrapes there.

Usage: celery-fleet-feed DIRECTORY (writes DIRECTORY/celery_fleet.prom atomically).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The collection's module_utils, installed beside this script by the role.
sys.path.insert(0, "/usr/local/lib/celery-fleet")
from diagnosis import is_celery_worker, metric_line, open_files_limit, supervisor_programs
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


def lines_now() -> list[str]:
    status = subprocess.run(["supervisorctl", "status"], capture_output=True, text=True, check=False)
    # supervisorctl exits 3 when a program is not running; anything else is no answer, and no file.
    if status.returncode not in (0, 3):
        raise SystemExit(f"supervisorctl status failed (rc {status.returncode}): {status.stderr.strip()}")
    samples: dict[str, list[str]] = {name: [] for name in HELP}

    def add(name: str, value: float, **labels: object) -> None:
        samples[name].append(metric_line(name, value, **labels))

    for program in supervisor_programs(status.stdout):
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


def main() -> None:
    directory = Path(sys.argv[1])
    text = "\n".join(lines_now()) + "\n"
    # Written beside its final name, then renamed: node_exporter never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".celery_fleet.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    Path(temporary).chmod(0o644)
    Path(temporary).replace(directory / "celery_fleet.prom")


if __name__ == "__main__":
    main()
