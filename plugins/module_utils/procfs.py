"""What /proc says of a process: its command line, children, descriptors and CPU time.

Standard library only, and no import from the collection: the diagnosis probe
(plugins/modules/celery_worker_probe.py) imports it on the hosts, and the
worker role installs it beside its metrics feed (roles/celery_worker/files/celery_fleet_feed.py),
which runs under the host's own Python without Ansible.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")


def proc_read(pid: int, name: str) -> str:
    try:
        return (PROC / str(pid) / name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def argv_of(pid: int) -> list[str]:
    return [word for word in proc_read(pid, "cmdline").split("\0") if word]


def children_of(pid: int) -> list[int]:
    """Direct children: the prefork pool's processes."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = proc_read(int(entry.name), "stat")
            # Fields after the command name (which may hold spaces), in parentheses: state, ppid, ...
            rest = stat.rsplit(")", 1)[-1].split()
            if len(rest) > 1 and rest[1] == str(pid):
                found.append(int(entry.name))
    return sorted(found)


def worker_process(pid: int, is_worker: Callable[[list[str]], bool]) -> int:
    """The Celery worker's main process Supervisor started: the program's process, or its child when a
    wrapper (`sh -c` without exec) started it. 0 if neither is a Celery worker (`is_worker` reads an argv)."""
    if is_worker(argv_of(pid)):
        return pid
    return next((child for child in children_of(pid) if is_worker(argv_of(child))), 0)


def fd_count(pid: int) -> int:
    """Open descriptors: the entries of /proc/PID/fd (readable without reading their links)."""
    try:
        return sum(1 for _ in (PROC / str(pid) / "fd").iterdir())
    except OSError:
        return 0


def fd_targets(pid: int) -> list[str]:
    """Where each descriptor points (root needs CAP_SYS_PTRACE for another user's, as `ss -p` does)."""
    try:
        links = list((PROC / str(pid) / "fd").iterdir())
    except OSError:
        return []
    targets = []
    for link in links:
        try:
            targets.append(str(link.readlink()))
        except OSError:
            continue
    return targets


def cpu_seconds(pid: int) -> float:
    rest = proc_read(pid, "stat").rsplit(")", 1)[-1].split()
    # utime and stime are fields 14 and 15 of /proc/PID/stat; rest starts at field 3.
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK") if len(rest) > 12 else 0.0
