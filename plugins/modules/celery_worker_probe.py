#!/usr/bin/python
"""celery_fleet.fleet.celery_worker_probe: a worker host's evidence, read-only, for playbooks/diagnose.yml."""

from __future__ import annotations

import re
import socket
import ssl
import struct
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.celery_fleet.fleet.plugins.module_utils.diagnosis import (
    fd_kind,
    is_celery_worker,
    open_files_limit,
    port_of,
    redacted,
    ss_sockets,
    supervisor_programs,
)
from ansible_collections.celery_fleet.fleet.plugins.module_utils.procfs import (
    PROC,
    argv_of,
    children_of,
    cpu_seconds,
    fd_count,
    fd_targets,
    proc_read,
    worker_process,
)

DOCUMENTATION = r"""
module: celery_worker_probe
short_description: Read a host's Celery workers under Supervisor, their descriptors and broker sockets, over a window
description:
  - Finds the Celery workers Supervisor runs (a program whose process is C(celery ... worker)), whoever deployed
    them, and their pool processes.
  - Samples each process's open descriptors (C(/proc/PID/fd)) several times over O(window_s), with their kinds at
    the end and the soft limit; reads the main process's TCP sockets to the broker ports with C(ss -tinpoH) at the
    start and the end of the window; tries an AMQP handshake with each broker-side peer.
  - Changes nothing (the optional C(strace) sample attaches to a process for O(strace_s) and detaches), so it runs in
    check mode too. Run it as root.
options:
  window_s:
    description: Seconds between the first and the last sample.
    type: int
    default: 15
  samples:
    description: Descriptor samples per process over the window (at least 2).
    type: int
    default: 4
  broker_ports:
    description: Peer ports that are a broker's or a proxy's AMQP port.
    type: list
    elements: int
    default: [5671, 5672]
  tls_ports:
    description: Of those, the ports that speak TLS (the handshake probe starts TLS first, without verifying).
    type: list
    elements: int
    default: [5671]
  handshake_timeout_s:
    description: Seconds the AMQP handshake probe waits for a peer's answer.
    type: int
    default: 3
  program_pattern:
    description: A program Supervisor does not run now counts as a Celery program when its name matches this.
    type: str
    default: celery
  strace_s:
    description: Seconds of C(strace -c -f) on each main process (0, the default, runs none; needs strace).
    type: int
    default: 0
author: celery_fleet
"""

EXAMPLES = r"""
- name: Read the Celery workers
  celery_fleet.fleet.celery_worker_probe:
    window_s: 15
  become: true
"""

RETURN = r"""
programs:
  description: Each Celery program with its state, processes (descriptor samples, kinds, limit) and broker sockets.
  type: list
  elements: dict
  returned: always
peers:
  description: Per broker-side peer (address:port), whether it answered an AMQP handshake, in how many seconds.
  type: dict
  returned: always
window_s:
  description: The sample window actually taken, in seconds.
  type: float
  returned: always
"""

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
# The broker's first frame: a method frame (type 1) on channel 0, connection.start (class 10, method 10).
CONNECTION_START = (1, 0, 10, 10)


def handshake(peer: str, tls: bool, timeout: float) -> dict[str, Any]:
    """Whether the peer answers AMQP 0-9-1's protocol header with connection.start, now."""
    host, port = peer.rsplit(":", 1)
    started = time.monotonic()
    took = lambda: round(time.monotonic() - started, 3)  # noqa: E731
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as raw:
            stream: socket.socket = raw
            if tls:
                context = ssl.create_default_context()
                # Only liveness: who the peer is was verified by the worker's own connection.
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                try:
                    stream = context.wrap_socket(raw)
                    stream.sendall(AMQP_HEADER)
                    head = stream.recv(11)
                except TimeoutError:
                    raise
                except OSError as error:
                    # A TLS alert, or a reset in the handshake, is an answer: a peer that insists on a client
                    # certificate (mutual TLS) is alive. Only silence, or nothing listening, is not.
                    reason = getattr(error, "reason", None) or type(error).__name__
                    return {
                        "answers": True,
                        "seconds": took(),
                        "detail": f"refused TLS without a certificate ({reason})",
                    }
            else:
                stream.sendall(AMQP_HEADER)
                head = stream.recv(11)
            while head and len(head) < 11:
                chunk = stream.recv(11 - len(head))
                if not chunk:
                    break
                head += chunk
        if len(head) == 11:
            frame_type, channel, _size, class_id, method_id = struct.unpack(">BHIHH", head)
            if (frame_type, channel, class_id, method_id) == CONNECTION_START:
                return {"answers": True, "seconds": took(), "detail": "connection.start"}
        return {"answers": False, "seconds": took(), "detail": f"unexpected answer ({len(head)} bytes)"}
    except OSError as error:
        return {"answers": False, "seconds": took(), "detail": type(error).__name__}


def sockets_now(module: AnsibleModule, pids: list[int], ports: set[int]) -> list[dict[str, Any]]:
    # -n: numeric ports (without it, /etc/services turns 5671 into "amqps").
    _rc, out, _err = module.run_command(["ss", "-tinpoHan"])
    return [s for s in ss_sockets(out, pids) if port_of(s["peer"]) in ports]


def strace_sample(module: AnsibleModule, pid: int, seconds: int) -> str:
    """`strace -c -f` for a few seconds: a frozen worker lives in epoll_wait."""
    if not module.get_bin_path("strace"):
        return "strace is not installed"
    _rc, _out, err = module.run_command(["timeout", "-s", "INT", str(seconds), "strace", "-c", "-f", "-p", str(pid)])
    return err


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "window_s": {"type": "int", "default": 15},
            "samples": {"type": "int", "default": 4},
            "broker_ports": {"type": "list", "elements": "int", "default": [5671, 5672]},
            "tls_ports": {"type": "list", "elements": "int", "default": [5671]},
            "handshake_timeout_s": {"type": "int", "default": 3},
            "program_pattern": {"type": "str", "default": "celery"},
            "strace_s": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    params = module.params
    if params["samples"] < 2 or params["window_s"] < 1:
        module.fail_json(msg="celery_worker_probe: samples must be at least 2 and window_s at least 1")
    rc, status, err = module.run_command(["supervisorctl", "status"])
    # supervisorctl exits 3 when a program is not running; anything else (4: no supervisord) is no answer.
    if rc not in (0, 3):
        module.fail_json(msg=f"supervisorctl status failed (rc {rc}): {(status + err).strip()}")
    pattern = re.compile(params["program_pattern"])
    programs = []
    for program in supervisor_programs(status):
        main_pid = worker_process(program["pid"], is_celery_worker) if program["pid"] else 0
        if main_pid:
            processes = [{"pid": main_pid, "role": "main", "argv": redacted(argv_of(main_pid))}]
            processes += [{"pid": pid, "role": "pool"} for pid in children_of(main_pid)]
            programs.append({**program, "pid": main_pid, "processes": processes})
        elif not program["pid"] and pattern.search(program["name"]):
            programs.append({**program, "processes": []})
    pids = [p["pid"] for program in programs for p in program["processes"]]
    mains = [program["pid"] for program in programs if program["processes"]]
    ports = set(params["broker_ports"])
    cpu = {pid: cpu_seconds(pid) for pid in pids}
    counts: dict[int, list[int]] = {pid: [] for pid in pids}
    first = sockets_now(module, mains, ports)
    started = time.monotonic()
    for number in range(params["samples"]):
        # Evenly spaced over the window: the first now, the last at its end.
        time.sleep(max(0.0, started + number * params["window_s"] / (params["samples"] - 1) - time.monotonic()))
        for pid in pids:
            counts[pid].append(fd_count(pid))
    window = round(time.monotonic() - started, 1)
    last = sockets_now(module, mains, ports)
    earlier = {(s["pid"], s["local"]): s for s in first}
    for sock in last:
        before = earlier.get((sock["pid"], sock["local"]))
        # None: the socket is newer than the window, so nothing can be said of its silence.
        sock["received_in_window"] = sock["bytes_received"] - before["bytes_received"] if before else None
        sock["retransmitting_at_start"] = bool(before and before["retransmitting"])
    for program in programs:
        for process in program["processes"]:
            pid = process["pid"]
            process["alive"] = (PROC / str(pid)).exists()
            if not process["alive"]:
                continue
            kinds: dict[str, int] = {}
            targets = fd_targets(pid)
            for target in targets:
                kinds[fd_kind(target)] = kinds.get(fd_kind(target), 0) + 1
            if process["role"] == "main":
                # Without the links, neither the kinds nor `ss -p` can tie a socket to the process.
                program["links_readable"] = bool(targets) or not counts[pid][-1]
            process.update(fds=counts[pid], fd_kinds=kinds, fd_limit=open_files_limit(proc_read(pid, "limits")),
                           cpu_s_in_window=round(cpu_seconds(pid) - cpu[pid], 2))  # fmt: skip
        program["sockets"] = [s for s in last if s["pid"] == program["pid"]]
        if params["strace_s"] > 0 and program["processes"]:
            program["strace"] = strace_sample(module, program["pid"], params["strace_s"])
    tls = set(params["tls_ports"])
    peers = {peer: handshake(peer, port_of(peer) in tls, params["handshake_timeout_s"])
             for peer in sorted({s["peer"] for s in last if s["state"] == "ESTAB"})}  # fmt: skip
    module.exit_json(changed=False, programs=programs, peers=peers, window_s=window)


if __name__ == "__main__":
    main()
