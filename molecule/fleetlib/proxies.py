"""HAProxy as the tests reach it: its admin socket, what `show stat` says of each server, and moving every
client onto one broker."""

from __future__ import annotations

import contextlib
import shlex
import time
from collections.abc import Iterable, Iterator

import testinfra.host

from fleetlib.hosts import reconnects, root, tcp_established
from fleetlib.waits import wait_for

# Python run on a proxy, which has no socat: one command on HAProxy's admin socket, and its answer. (No single
# quote inside: haproxy_command passes the script in single quotes.)
ADMIN_SOCKET_FUNCTION = """
import socket, sys, time
def admin(path, command, timeout=None):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    sock.connect(path)
    sock.sendall(command.encode() + b"\\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data.decode()
"""
HAPROXY_SOCKET_SCRIPT = ADMIN_SOCKET_FUNCTION + "print(admin(sys.argv[1], sys.argv[2]))\n"


def haproxy_command(host: testinfra.host.Host, command: str, socket_path: str = "/run/haproxy/admin.sock") -> str:
    """Run one command on HAProxy's admin socket (Python stands in for socat)."""
    with host.sudo():
        return host.check_output(f"python3 -c '{HAPROXY_SOCKET_SCRIPT}' {socket_path} '{command}'")


def show_stat_rows(text: str, backend: str) -> dict[str, dict[str, str]]:
    """`show stat`'s CSV, one backend's rows (its servers, and BACKEND itself) by name, as columns to values."""
    lines = [line for line in text.splitlines() if line]
    if not lines:
        return {}
    header, *rows = lines
    columns = header.lstrip("# ").split(",")
    stats = {}
    for row in rows:
        fields = dict(zip(columns, row.split(","), strict=False))
        if fields["pxname"] == backend and fields["svname"] != "FRONTEND":
            stats[fields["svname"]] = fields
    return stats


def haproxy_stats(host: testinfra.host.Host, backend: str = "rabbitmq") -> dict[str, dict[str, str]]:
    """`show stat` of a backend: each row (its servers, and BACKEND itself) by name, as columns to values."""
    return show_stat_rows(haproxy_command(host, "show stat"), backend)


def server_statuses(stats: dict[str, dict[str, str]]) -> dict[str, str]:
    """Status (UP, DOWN, MAINT, ...) of each server among a backend's `show stat` rows."""
    return {name: row["status"] for name, row in stats.items() if name != "BACKEND"}


def haproxy_server_status(host: testinfra.host.Host, backend: str = "rabbitmq") -> dict[str, str]:
    """Status (UP, DOWN, MAINT, ...) of each server of a backend, from `show stat`."""
    return server_statuses(haproxy_stats(host, backend))


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
def clients_moved_to(
    proxies: list[testinfra.host.Host], brokers: list[str], target: str, workers: list[testinfra.host.Host], log: str
) -> Iterator[None]:
    """While inside, only the target serves, every proxy has ended every session, and each worker has logged its
    reconnection (to `log`, within 30 s).

    Each client reconnects at once, as it does after a fault, and so lands on
    the target: cheaper than restarting the workers' pools, no process starts.
    """
    with only_serving(proxies, brokers, target):
        cut_at = time.time()
        each_proxy(proxies, [f"shutdown sessions server rabbitmq/{name}" for name in brokers])
        moved = wait_for(lambda: all(reconnects(worker, log, cut_at) for worker in workers), timeout=30)
        assert moved, f"a worker did not reconnect within 30 s of its session being ended: {log}"
        yield


# Runs on a proxy: every `interval` seconds, a line "@ <epoch>", then `show stat`'s header and the backend's rows
# (none when the socket does not answer), parsed on the control node with show_stat_rows.
STATE_SAMPLER_SCRIPT = (
    ADMIN_SOCKET_FUNCTION
    + """
while True:
    try:
        answer = admin(sys.argv[1], "show stat", 1).splitlines()
    except OSError:
        answer = []
    rows = [line for line in answer if line.startswith(("# ", sys.argv[2] + ","))]
    print("\\n".join([f"@ {time.time():.3f}", *rows]), flush=True)
    time.sleep(float(sys.argv[3]))
"""
)
SAMPLER_MARK = "celery-fleet-state-sampler"


def start_state_sampler(host: testinfra.host.Host, interval: float = 0.5, backend: str = "rabbitmq") -> None:
    """Sample HAProxy's view of each server on the proxy itself, in the background, until stopped."""
    stop_state_sampler(host, backend)
    script = shlex.quote(STATE_SAMPLER_SCRIPT)
    with host.sudo():
        host.check_output(f"nohup python3 -c {script} /run/haproxy/admin.sock {backend} {interval} {SAMPLER_MARK} "
                          f"> /root/{SAMPLER_MARK}.txt 2>&1 < /dev/null &")  # fmt: skip


def stop_state_sampler(host: testinfra.host.Host, backend: str = "rabbitmq") -> list[tuple[float, dict[str, str]]]:
    """Stop the sampler; (epoch, {server: status's first word}) of every sample ({} when the admin socket did
    not answer)."""
    with host.sudo():
        host.run(f"pkill -f '[{SAMPLER_MARK[0]}]{SAMPLER_MARK[1:]}'")
        output = host.run(f"cat /root/{SAMPLER_MARK}.txt").stdout
    samples = []
    for block in output.split("@ ")[1:]:
        when, _, rows = block.partition("\n")
        statuses = server_statuses(show_stat_rows(rows, backend))
        samples.append((float(when), {name: status.split()[0] for name, status in statuses.items()}))
    return samples


def holds(proxy: testinfra.host.Host, address: str) -> bool:
    """Whether the proxy holds the virtual address now (keepalived has added it to an interface)."""
    return bool(root(proxy, f"ip -o -4 address show to {address}/32").strip())


def address_holders(proxies: Iterable[testinfra.host.Host], address: str) -> list[str]:
    """The proxies (by name) that hold the virtual address: one, unless it is moving or split."""
    return [proxy.backend.get_hostname() for proxy in proxies if holds(proxy, address)]


def sessions_from(proxy: testinfra.host.Host, address: str, port: int) -> set[str]:
    """The clients' ends (ip:port) of the established sessions to address:port on this proxy. A proxy that gave
    the address up may still list sessions its clients have long left: match them against the clients' own."""
    return {peer for local, peer in tcp_established(proxy, port, local=True) if local == f"{address}:{port}"}


def connections_to(client: testinfra.host.Host, address: str, port: int) -> set[str]:
    """The client's own ends (ip:port) of its established connections to address:port."""
    return {local for local, peer in tcp_established(client, port, local=False) if peer == f"{address}:{port}"}
