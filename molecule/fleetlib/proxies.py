"""HAProxy as the tests reach it: its admin socket, what `show stat` says of each server, and moving every
client onto one broker."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterable, Iterator

import testinfra.host

HAPROXY_SOCKET_SCRIPT = """
import socket, sys
sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
sock.sendall(sys.argv[2].encode() + b"\\n")
data = b""
while chunk := sock.recv(65536):
    data += chunk
print(data.decode())
"""


def haproxy_command(host: testinfra.host.Host, command: str, socket_path: str = "/run/haproxy/admin.sock") -> str:
    """Run one command on HAProxy's admin socket (Python stands in for socat)."""
    with host.sudo():
        return host.check_output(f"python3 -c '{HAPROXY_SOCKET_SCRIPT}' {socket_path} '{command}'")


def haproxy_stats(host: testinfra.host.Host, backend: str = "rabbitmq") -> dict[str, dict[str, str]]:
    """`show stat` of a backend: each row (its servers, and BACKEND itself) by name, as columns to values."""
    header, *rows = [line for line in haproxy_command(host, "show stat").splitlines() if line]
    columns = header.lstrip("# ").split(",")
    stats = {}
    for row in rows:
        fields = dict(zip(columns, row.split(","), strict=False))
        if fields["pxname"] == backend and fields["svname"] != "FRONTEND":
            stats[fields["svname"]] = fields
    return stats


def haproxy_server_status(host: testinfra.host.Host, backend: str = "rabbitmq") -> dict[str, str]:
    """Status (UP, DOWN, MAINT, ...) of each server of a backend, from `show stat`."""
    return {name: row["status"] for name, row in haproxy_stats(host, backend).items() if name != "BACKEND"}


def each_proxy(proxies: Iterable[testinfra.host.Host], commands: list[str]) -> None:
    """The same admin-socket commands on every proxy, one line each (HAProxy takes `;`-separated commands)."""
    for proxy in proxies:
        haproxy_command(proxy, "; ".join(commands))


@contextlib.contextmanager
def only_serving(proxies: list[testinfra.host.Host], brokers: Iterable[str], target: str) -> Iterator[None]:
    """While inside, every proxy sends new connections to the target broker only."""
    others = [name for name in brokers if name != target]
    each_proxy(proxies, [f"disable server rabbitmq/{name}" for name in others])
    try:
        yield
    finally:
        each_proxy(proxies, [f"enable server rabbitmq/{name}" for name in others])


@contextlib.contextmanager
def sessions_moved_to(proxies: list[testinfra.host.Host], brokers: list[str], target: str) -> Iterator[float]:
    """While inside, only the target serves, and every proxy has ended every session (yields when).

    Each client reconnects at once, as it does after a fault, and so lands on
    the target: cheaper than restarting the workers' pools, no process starts.
    """
    with only_serving(proxies, brokers, target):
        cut_at = time.time()
        each_proxy(proxies, [f"shutdown sessions server rabbitmq/{name}" for name in brokers])
        yield cut_at


# Runs on a proxy: every `interval` seconds, one line "<epoch> <server>=<status> ..." for the backend's servers
# (the status's first word: UP, DOWN, MAINT, DRAIN, NOLB, no), or "<epoch>" alone when the socket does not answer.
STATE_SAMPLER_SCRIPT = """
import socket, sys, time
def states():
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(1)
    sock.connect(sys.argv[1])
    sock.sendall(b"show stat\\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    header, *rows = [line for line in data.decode().splitlines() if line]
    columns = header.lstrip("# ").split(",")
    fields = [dict(zip(columns, row.split(","))) for row in rows]
    return [f"{f['svname']}={f['status'].split()[0]}" for f in fields
            if f["pxname"] == sys.argv[2] and f["svname"] not in ("FRONTEND", "BACKEND")]
while True:
    try:
        line = " ".join(states())
    except OSError:
        line = ""
    print(f"{time.time():.3f} {line}".strip(), flush=True)
    time.sleep(float(sys.argv[3]))
"""
SAMPLER_MARK = "celery-fleet-state-sampler"


def start_state_sampler(host: testinfra.host.Host, interval: float = 0.5, backend: str = "rabbitmq") -> None:
    """Sample HAProxy's view of each server on the proxy itself, in the background, until stopped."""
    stop_state_sampler(host)
    script = shlex.quote(STATE_SAMPLER_SCRIPT)
    with host.sudo():
        host.check_output(f"nohup python3 -c {script} /run/haproxy/admin.sock {backend} {interval} {SAMPLER_MARK} "
                          f"> /root/{SAMPLER_MARK}.txt 2>&1 < /dev/null &")  # fmt: skip


def stop_state_sampler(host: testinfra.host.Host) -> list[tuple[float, dict[str, str]]]:
    """Stop the sampler; (epoch, {server: status}) of every sample ({} when the admin socket did not answer)."""
    with host.sudo():
        host.run(f"pkill -f '[{SAMPLER_MARK[0]}]{SAMPLER_MARK[1:]}'")
        lines = host.run(f"cat /root/{SAMPLER_MARK}.txt").stdout.splitlines()
    samples = []
    for line in lines:
        when, *states = line.split()
        samples.append((float(when), dict(state.split("=", 1) for state in states)))
    return samples
