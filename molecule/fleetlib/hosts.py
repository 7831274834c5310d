"""Reaching the scenario's hosts: other hosts of the inventory, addresses, commands as root, Celery logs, Supervisor
pools, connections."""

from __future__ import annotations

import datetime
import re
import shlex

import testinfra.host

from fleetlib.waits import wait_for

LOG_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): ")


def get(host: testinfra.host.Host, name: str) -> testinfra.host.Host:
    """Another host of the same Molecule inventory."""
    return host.get_host(f"ansible://{name}", ansible_inventory=host.backend.ansible_inventory)


def container_address(host: testinfra.host.Host) -> str:
    """The host's address on its Docker network."""
    return host.check_output("hostname -I").split()[0]


def root(host: testinfra.host.Host, command: str) -> str:
    """A command's output, run as root (through sudo: the tests log in as an unprivileged user)."""
    with host.sudo():
        return host.check_output(command)


def root_succeeds(host: testinfra.host.Host, command: str) -> bool:
    with host.sudo():
        return host.run(command).rc == 0


def lines_with(host: testinfra.host.Host, path: str, text: str, missing_ok: bool = False) -> list[str]:
    """The lines of a file on the host that contain text, found there: the tests poll logs that grow to megabytes
    over a run, and reading them whole every half second cost CPU the scenarios share."""
    found = f"grep -aF -- {shlex.quote(text)} {shlex.quote(path)}"
    # grep exits 1 when no line matches, 2 when it cannot read the file.
    return root(host, f"{found} 2>/dev/null || true" if missing_ok else f"{found}; test $? -le 1").splitlines()


def log_records(host: testinfra.host.Host, path: str, marker: str = "") -> list[tuple[float, str]]:
    """(epoch time, line) of the Celery log records that contain marker (the hosts log in UTC)."""
    records = []
    for line in lines_with(host, path, marker):
        stamp = LOG_STAMP.match(line)
        if stamp:
            when = datetime.datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
            records.append((when.replace(tzinfo=datetime.UTC).timestamp(), line))
    return records


def log_times(host: testinfra.host.Host, path: str, marker: str = "") -> list[float]:
    """Epoch times of the Celery log records that contain marker."""
    return [when for when, _ in log_records(host, path, marker)]


def restart_pool(worker: testinfra.host.Host, program: str, log: str) -> None:
    """Restart a Supervisor-managed Celery pool and wait until it says it is ready."""
    ready_before = len(log_times(worker, log, " ready."))
    root(worker, f"supervisorctl restart '{program}:*'")
    assert wait_for(lambda: len(log_times(worker, log, " ready.")) > ready_before, timeout=90), log


def tcp_established(host: testinfra.host.Host, port: int, local: bool) -> list[tuple[str, str]]:
    """(local, peer) address:port pairs of the host's established TCP connections with `port` on its own side
    (`local`) or on the peer's."""
    side = "sport" if local else "dport"
    lines = root(host, f"ss -Htn state established '( {side} = :{port} )'").splitlines()
    return [(line.split()[-2], line.split()[-1]) for line in lines]


def established(host: testinfra.host.Host, peer_ip: str) -> bool:
    """Whether the host holds an ESTABLISHED TCP connection to the peer's AMQP over TLS port."""
    return any(peer == f"{peer_ip}:5671" for _, peer in tcp_established(host, 5671, local=False))


def reconnects(host: testinfra.host.Host, log: str, since: float) -> list[float]:
    """When a Celery worker logged a (re)connection to its broker after `since`."""
    return [when for when in log_times(host, log, "Connected to amqp") if when > since]
