#!/usr/bin/python3
"""keepalived's check: exit 0 while HAProxy answers on its admin socket and its backend is UP (at least one broker
serves), 1 otherwise.

So the virtual address leaves a proxy whose HAProxy stopped, died or froze, and one cut off from every broker (its
health checks marked them all DOWN): the latter still runs keepalived, and would otherwise hold on to the address
while it cannot serve, and take it back from the peer when the cut heals.

Usage: haproxy_serves.py <admin socket> <backend> <timeout s>.
"""

from __future__ import annotations

import socket
import sys


def show_stat(path: str, timeout: float) -> str:
    """`show stat`'s CSV from HAProxy's admin socket."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(b"show stat\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()


def backend_up(stat: str, backend: str) -> bool:
    """Whether the backend's own row says UP (HAProxy's: at least one of its servers is UP)."""
    lines = stat.splitlines()
    if not lines:
        return False
    columns = lines[0].lstrip("# ").split(",")
    for line in lines[1:]:
        row = dict(zip(columns, line.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") == "BACKEND":
            return row.get("status") == "UP"
    return False


def main(argv: list[str]) -> int:
    path, backend, timeout = argv[1], argv[2], float(argv[3])
    try:
        return 0 if backend_up(show_stat(path, timeout), backend) else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
