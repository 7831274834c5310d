"""HAProxy as the tests reach it: its admin socket and what `show stat` says of each server."""

from __future__ import annotations

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
