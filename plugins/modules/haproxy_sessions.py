#!/usr/bin/python
"""celery_fleet.fleet.haproxy_sessions: which client each HAProxy session carries to which server, read-only."""

from __future__ import annotations

import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celery_fleet.fleet.plugins.module_utils.diagnosis import haproxy_sessions

DOCUMENTATION = r"""
module: haproxy_sessions
short_description: Read HAProxy's sessions (client, the proxy's end towards the server, server) from its admin socket
description:
  - Sends C(show sess all) to HAProxy's admin socket and returns, for each session with a server, the client's
    address, the proxy's own address towards the server (what the server sees as its client) and the server.
  - Read-only; runs in check mode. Run it as root (the socket is root's).
options:
  socket:
    description: HAProxy's admin socket (a stats socket at C(level admin)).
    type: path
    default: /run/haproxy/admin.sock
  timeout_s:
    description: Seconds to wait for HAProxy's answer.
    type: int
    default: 10
author: celery_fleet
"""

EXAMPLES = r"""
- name: Read the proxy's sessions
  celery_fleet.fleet.haproxy_sessions:
  become: true
"""

RETURN = r"""
sessions:
  description: Per session, client, backend_local (the proxy's end towards the server), server and server_addr.
  type: list
  elements: dict
  returned: always
"""


def ask(path: str, command: str, timeout: float) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
        admin.settimeout(timeout)
        admin.connect(path)
        admin.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := admin.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
            "timeout_s": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    try:
        answer = ask(module.params["socket"], "show sess all", module.params["timeout_s"])
    except OSError as error:
        module.fail_json(msg=f"HAProxy's admin socket {module.params['socket']} did not answer: {error}")
    module.exit_json(changed=False, sessions=haproxy_sessions(answer))


if __name__ == "__main__":
    main()
