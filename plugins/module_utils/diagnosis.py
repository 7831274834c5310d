"""Fleet diagnosis: read a worker host's evidence, join it with the brokers' and the proxies' view, give verdicts.

The incidents this project exists for were found by hand: `strace -c` showed a
worker living in `epoll_wait`, `/proc/PID/fd` and `ss` a broker socket
ESTABLISHED that received nothing, descriptor counts climbing; Supervisor said
RUNNING throughout. This file turns that evidence into a verdict per Celery
process, with the evidence that led to it.

- The worker side (celery_fleet.fleet.celery_worker_probe, on each worker host)
  parses `supervisorctl status`, `ss -tinpoH` and `/proc` with the functions
  here, then samples them over a window.
- The brokers' side (`rabbitmqctl ... --formatter json`) and the proxies' side
  (HAProxy's `show sess all`) come from the role's delegated tasks.
- `diagnose` joins them: a worker's socket to a proxy is followed through the
  proxy's session table to the broker connection it carries, and from there to
  its channels, consumers and queues.

Nothing here reads what this project deployed (no app.json, no role variable):
the same evidence exists for any Celery worker under Supervisor.

One file for the collection: the probe module imports it on the hosts, the
celery_fleet.fleet.diagnosis filters on the control node, the unit tests here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

VERDICTS = ("frozen", "not consuming", "starved", "leaking", "not running", "not probed", "healthy")
# What each verdict asks of a person, in the order of how urgently.
SEVERITY = {verdict: rank for rank, verdict in enumerate(VERDICTS)}

_STATUS = re.compile(r"^(?P<name>\S+)\s+(?P<state>[A-Z]+)\s*(?P<rest>.*)$")
_UPTIME = re.compile(r"uptime (?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)")
_PID = re.compile(r"pid (\d+)")
_SS_USERS = re.compile(r'\("[^"]*",pid=(\d+),fd=(\d+)\)')
_SS_TIMER = re.compile(r"timer:\((\w+),([^,)]*),(\d+)\)")
_SS_FIELD = re.compile(r"\b(lastsnd|lastrcv|lastack|bytes_received|bytes_acked|unacked|rto|backoff):([\d.]+)")
_SS_RETRANS = re.compile(r"\bretrans:(\d+)/(\d+)")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_SESSION = re.compile(r"^0x[0-9a-f]+: \[")
_SOURCE = re.compile(r"\bsource=(\S+)")
_BACKEND_ADDR = re.compile(r"^\s*backend=\S+ \(id=\d+ mode=\w+\) addr=(\S+)")
_SERVER = re.compile(r"^\s*server=(\S+) \(id=\d+\) addr=(\S+)")


# The worker side -----------------------------------------------------------------------------------------------


def supervisor_programs(status: str) -> list[dict[str, Any]]:
    """`supervisorctl status` lines -> name, state, pid (0 if none) and uptime in seconds."""
    programs = []
    for line in status.splitlines():
        found = _STATUS.match(line.strip())
        if not found:
            continue
        pid, uptime = _PID.search(found["rest"]), _UPTIME.search(found["rest"])
        seconds = 0
        if uptime:
            days = int(uptime["days"] or 0)
            seconds = days * 86400 + int(uptime["h"]) * 3600 + int(uptime["m"]) * 60 + int(uptime["s"])
        programs.append(
            {"name": found["name"], "state": found["state"], "pid": int(pid[1]) if pid else 0, "uptime_s": seconds}
        )
    return programs


def supervisor_rpc_programs(infos: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Supervisor's XML-RPC `getAllProcessInfo()` -> the same fields as supervisor_programs: the name as
    `supervisorctl status` prints it (group:name within a group), and pid and uptime only while RUNNING, as it
    does (a STOPPING program still has a pid there)."""
    programs = []
    for info in infos:
        name, group, state = info["name"], info["group"], info["statename"]
        running = state == "RUNNING"
        programs.append(
            {
                "name": name if group == name else f"{group}:{name}",
                "state": state,
                "pid": int(info["pid"] or 0) if running else 0,
                "uptime_s": max(0, int(info["now"]) - int(info["start"])) if running else 0,
            }
        )
    return programs


# Celery's global options that take a value: the word after one is not the subcommand.
_GLOBAL_VALUES = {"-A", "--app", "-b", "--broker", "--result-backend", "--loader", "--config", "--workdir"}


def celery_subcommand(argv: Sequence[str]) -> str:
    """The subcommand of a `celery` command line (`worker`, `beat`, ...), '' if it is not one.

    The executable may be `celery`, or python running it (`python -m celery`, `python .../bin/celery`).
    """
    words = [word.rsplit("/", 1)[-1] for word in argv]
    start = next((i + 1 for i, word in enumerate(words[:3]) if word == "celery"), 0)
    if not start:
        return ""
    index = start
    while index < len(argv):
        word = argv[index]
        if not word.startswith("-"):
            return word
        index += 2 if word in _GLOBAL_VALUES else 1
    return ""


def is_celery_worker(argv: Sequence[str]) -> bool:
    """A Celery worker's main process: `celery ... worker ...`, however it was started."""
    return celery_subcommand(argv) == "worker"


def redacted(argv: Sequence[str]) -> list[str]:
    """A command line fit for a report: a password in a broker URL (`-b amqp://u:p@h`) is replaced."""
    return [_URL_PASSWORD.sub(r"\1***@", word) for word in argv]


def argv_option(argv: Sequence[str], *names: str) -> str:
    """The value of `-Q x`, `--queues x` or `--queues=x` ('' when absent)."""
    for index, word in enumerate(argv):
        for name in names:
            if word == name and index + 1 < len(argv):
                return argv[index + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                return word[len(name) :]
    return ""


def address(text: str) -> str:
    """One spelling of ip:port for ss, HAProxy and rabbitmqctl: `[v6]:port`, an IPv4-mapped IPv6 as IPv4,
    no zone."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]").split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def fd_kind(target: str) -> str:
    """What a /proc/PID/fd link points at: socket, pipe, eventpoll, anon_inode, device or file."""
    if target.startswith("socket:"):
        return "socket"
    if target.startswith("pipe:"):
        return "pipe"
    if target == "anon_inode:[eventpoll]":
        return "eventpoll"
    if target.startswith("anon_inode:"):
        return "anon_inode"
    if target.startswith("/dev/"):
        return "device"
    return "file"


def open_files_limit(limits: str) -> int:
    """The soft 'Max open files' of /proc/PID/limits (0: unlimited or unreadable)."""
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return int(soft) if soft.isdigit() else 0
    return 0


def ss_sockets(output: str, pids: Iterable[int]) -> list[dict[str, Any]]:
    """`ss -tinpoHa` -> the TCP sockets the pids hold: state, addresses, queues, timer and the `-i` timings.

    With -H, a socket's first line starts at column 0 and its `-i` line is
    indented. A socket shared by several processes (a pool child inherits
    its parent's) is listed once per holder.
    """
    wanted, sockets = set(pids), []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if not line or line[0].isspace():
            continue
        info = lines[index + 1] if index + 1 < len(lines) and lines[index + 1][:1].isspace() else ""
        fields = line.split()
        if len(fields) < 5:
            continue
        for pid, fd in _SS_USERS.findall(line):
            if int(pid) in wanted:
                sockets.append(ss_socket(fields, line, info, int(pid), int(fd)))
    return sockets


def ss_socket(fields: list[str], line: str, info: str, pid: int, fd: int) -> dict[str, Any]:
    timer = _SS_TIMER.search(line)
    numbers = {name: float(value) for name, value in _SS_FIELD.findall(info)}
    retrans = _SS_RETRANS.search(info)
    return {
        "pid": pid,
        "fd": fd,
        "state": fields[0],
        "recv_q": int(fields[1]),
        "send_q": int(fields[2]),
        "local": address(fields[3]),
        "peer": address(fields[4]),
        "timer": f"{timer[1]},{timer[2]},{timer[3]}" if timer else "",
        "retransmitting": bool(timer and timer[1] == "on" and retrans and int(retrans[1]) > 0),
        "unacked_segments": int(numbers.get("unacked", 0)),
        "lastsnd_ms": int(numbers.get("lastsnd", 0)),
        "lastrcv_ms": int(numbers.get("lastrcv", 0)),
        "lastack_ms": int(numbers.get("lastack", 0)),
        "bytes_received": int(numbers.get("bytes_received", 0)),
    }


def port_of(address: str) -> int:
    tail = address.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


# The proxies' side ---------------------------------------------------------------------------------------------


def haproxy_sessions(show_sess_all: str) -> list[dict[str, str]]:
    """HAProxy's `show sess all` -> each session's client, the proxy's own end towards the server, and the server.

    The broker sees the proxy's end (`backend=... addr=`) as its client's
    address: that is how a worker's socket to a proxy is followed to its
    connection on a broker.
    """
    sessions: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in show_sess_all.splitlines():
        if _SESSION.match(line):
            current = {}
            sessions.append(current)
            source = _SOURCE.search(line)
            current["client"] = address(source[1]) if source else ""
            continue
        backend, server = _BACKEND_ADDR.match(line), _SERVER.match(line)
        if backend and current is not None:
            current["backend_local"] = address(backend[1])
        if server and current is not None:
            current["server"], current["server_addr"] = server[1], address(server[2])
    return [s for s in sessions if s.get("client") and s.get("backend_local")]


# The verdicts --------------------------------------------------------------------------------------------------


def erlang_address(host: str | Sequence[int], port: int) -> str:
    """rabbitmqctl's JSON gives an address as Erlang's tuple: [10, 0, 0, 1], or eight 16-bit words for IPv6."""
    if isinstance(host, str):
        return address(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if len(host) == 4:
        return address(".".join(str(part) for part in host) + f":{port}")
    return address("[" + ":".join(f"{part:x}" for part in host) + f"]:{port}")


def broker_index(brokers: Mapping[str, Any]) -> dict[str, Any]:
    """The brokers' JSON lists, indexed: connections by peer address, channels by connection, consumers by
    channel, queues by (vhost, name)."""
    connections = {erlang_address(c["peer_host"], c["peer_port"]): c for c in brokers.get("connections", [])}
    channels: dict[str, list[dict[str, Any]]] = {}
    for channel in brokers.get("channels", []):
        channels.setdefault(str(channel["connection"]), []).append(channel)
    consumers: dict[str, list[dict[str, Any]]] = {}
    for consumer in brokers.get("consumers", []):
        consumers.setdefault(str(consumer["channel_pid"]), []).append(consumer)
    queues = {(q["vhost"], q["name"]): q for q in brokers.get("queues", [])}
    return {"connections": connections, "channels": channels, "consumers": consumers, "queues": queues}


def broker_view(
    sock: Mapping[str, Any], index: Mapping[str, Any], sessions: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """What the brokers know of one worker socket: its connection, consumers and their queues ({} if unseen)."""
    local = sock["local"]
    # What the broker sees as this socket's peer: the worker itself, or a proxy's end of the session it carries.
    through = next((s for s in sessions if s["client"] == local), None)
    seen_as = through["backend_local"] if through else local
    connection = index["connections"].get(seen_as)
    if connection is None:
        return {"via_proxy": bool(through), "seen_as": seen_as}
    consumers = [
        consumer
        for channel in index["channels"].get(str(connection["pid"]), [])
        for consumer in index["consumers"].get(str(channel["pid"]), [])
    ]
    queues = []
    for consumer in consumers:
        queue = index["queues"].get((connection["vhost"], consumer["queue_name"]))
        if queue and queue not in queues:
            queues.append(queue)
    return {
        "via_proxy": bool(through),
        "seen_as": seen_as,
        "server": through["server"] if through else "",
        "connection": connection["name"],
        "heartbeat_s": int(connection.get("timeout") or 0),
        "consumers": [
            {"queue": c["queue_name"], "prefetch": int(c["prefetch_count"]), "tag": c["consumer_tag"]}
            for c in consumers
        ],
        "queues": [
            {
                "name": q["name"],
                "ready": int(q.get("messages_ready") or 0),
                "unacked": int(q.get("messages_unacknowledged") or 0),
                "consumers": int(q.get("consumers") or 0),
            }
            for q in queues
        ],
    }


def fd_trend(samples: Sequence[int], window_s: float) -> tuple[float, bool]:
    """Descriptors gained per minute over the window, and whether they grew steadily: never fell, and rose
    between at least two in three samples (one new connection is a single step, not a trend)."""
    if len(samples) < 2 or window_s <= 0:
        return 0.0, False
    steps = list(pairwise(samples))
    rises = sum(1 for a, b in steps if b > a)
    steady = all(b >= a for a, b in steps) and rises >= max(1, -(-2 * len(steps) // 3))
    return round((samples[-1] - samples[0]) * 60 / window_s, 1), steady


def leak_finding(process: Mapping[str, Any], window_s: float, thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptor numbers of a process, and a finding when they grow at the leak rate or faster."""
    samples, limit = process["fds"], process["fd_limit"]
    per_min, steady = fd_trend(samples, window_s)
    numbers: dict[str, Any] = {
        "fds": samples[-1] if samples else 0,
        "fd_limit": limit,
        "fd_headroom": limit - samples[-1] if limit and samples else None,
        "fd_growth_per_min": per_min,
        "time_to_limit_s": None,
    }
    if steady and per_min >= float(thresholds["leak_rate_per_min"]):
        if limit:
            numbers["time_to_limit_s"] = round((limit - samples[-1]) * 60 / per_min)
        to_limit = f", {numbers['time_to_limit_s']} s to the limit of {limit}" if limit else ", no limit"
        numbers["finding"] = (
            f"descriptors grew {samples[0]} -> {samples[-1]} in {window_s:g} s ({per_min:g}/min, never down){to_limit}"
        )
    return numbers


def silence_limit(heartbeat_s: int, thresholds: Mapping[str, Any]) -> tuple[float, str]:
    """How long a broker socket may receive nothing: two heartbeats (a peer that misses two is dead, to both
    RabbitMQ and kombu), or the silence threshold when the connection has no heartbeat."""
    if heartbeat_s > 0:
        return 2.0 * heartbeat_s, f"2 x its {heartbeat_s} s heartbeat"
    return float(thresholds["frozen_silence_s"]), "diagnose_frozen_silence_s (the connection has no heartbeat)"


def socket_findings(
    sock: Mapping[str, Any], view: Mapping[str, Any], peer: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """(signs this connection is dead on their own, signs of silence) for one broker socket.

    On their own: CLOSE-WAIT, retransmitting at both ends of the window, a peer that does not answer. Silence
    alone also fits a connection nothing is sent on (an idle worker, Celery's event connection), so it counts
    only where the brokers show a consumer on this connection with ready messages.
    """
    if sock["state"] == "CLOSE-WAIT":
        return [f"socket to {sock['peer']} in CLOSE-WAIT: the far end closed it and the worker never noticed"], []
    if sock["state"] != "ESTAB":
        return [], []
    strong: list[str] = []
    if sock["retransmitting"] and sock.get("retransmitting_at_start"):
        strong.append(f"retransmitting to {sock['peer']}, nothing acknowledged for {sock['lastack_ms'] / 1000:.1f} s")
    if peer and not peer.get("answers", True):
        strong.append(f"{sock['peer']} does not answer now ({peer.get('detail', '')})")
    limit, why = silence_limit(int(view.get("heartbeat_s", 0)), thresholds)
    silent_s = sock["lastrcv_ms"] / 1000
    silence = []
    if silent_s > limit and sock.get("received_in_window") == 0:
        silence.append(
            f"ESTABLISHED to {sock['peer']}, nothing received for {silent_s:.1f} s (limit {limit:g} s: {why})"
        )
    return strong, silence


def main_process_verdict(
    views: list[tuple[Mapping[str, Any], Mapping[str, Any]]],
    peers: Mapping[str, Any],
    concurrency: int,
    brokers_seen: bool,
    thresholds: Mapping[str, Any],
) -> tuple[str, list[str], list[str]]:
    """(verdict, evidence, what could not be seen) of a Celery main process from its broker sockets, each judged
    on its own."""
    evidence: list[str] = []
    unseen: list[str] = []
    if not views:
        return "not consuming", ["no TCP connection to a broker port"], unseen
    if not brokers_seen:
        unseen.append("no broker of diagnose_broker_group answered: no consumers, prefetch or queue depth")
    consumers: list[Mapping[str, Any]] = []
    for sock, view in views:
        strong, silence = socket_findings(sock, view, peers.get(sock["peer"], {}), thresholds)
        consumers += view.get("consumers", [])
        ready = sum(q["ready"] for q in view.get("queues", []))
        known = "connection" in view
        if known and int(view.get("heartbeat_s", 0)) == 0:
            unseen.append(f"the connection through {sock['peer']} has no AMQP heartbeat: silence is all there is")
        if brokers_seen and not known:
            unseen.append(f"no broker knows this socket (seen by them as {view.get('seen_as', sock['local'])})")
        if known and view.get("consumers") and ready > 0 and (strong or silence):
            return "frozen", [*strong, *silence, f"{ready} ready message(s) wait in its queues"], unseen
        if strong and not known:
            return "frozen", [*strong, "its queues were not seen"], unseen
        evidence += strong + silence
    if brokers_seen and not consumers and all("connection" in view for _, view in views):
        return "not consuming", [*evidence, "its broker connection has no consumer"], unseen
    expected = concurrency * int(thresholds["prefetch_multiplier"])
    limited = [c for c in consumers if 0 < c["prefetch"] < expected]
    if limited:
        found = ", ".join(f"{c['queue']}: {c['prefetch']}" for c in limited)
        multiplier = thresholds["prefetch_multiplier"]
        return "starved", [*evidence, f"prefetch {found}, below {concurrency} processes x {multiplier}"], unseen
    if concurrency == 0:
        unseen.append("no pool processes (not prefork): the prefetch is not compared")
    return "", evidence, unseen


def diagnose(
    probes: Mapping[str, Mapping[str, Any]],
    brokers: Mapping[str, Any] | None,
    sessions: Sequence[Mapping[str, str]],
    thresholds: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """One row per Celery process of every host: verdict, evidence, the key numbers, and what was not seen."""
    index = broker_index(brokers or {})
    rows = []
    for host, probe in sorted(probes.items()):
        if not probe or "programs" not in probe:
            rows.append({"host": host, "program": "", "pid": 0, "role": "main", "state": "", "uptime_s": 0,
                         "verdict": "not probed", "evidence": ["the probe failed or the host was unreachable"],
                         "unseen": []})  # fmt: skip
            continue
        for program in probe["programs"]:
            rows += program_rows(host, probe, program, index, bool(brokers), sessions, thresholds)
    return rows


def program_rows(
    host: str,
    probe: Mapping[str, Any],
    program: Mapping[str, Any],
    index: Mapping[str, Any],
    brokers_seen: bool,
    sessions: Sequence[Mapping[str, str]],
    thresholds: Mapping[str, Any],
) -> list[dict[str, Any]]:
    base = {"host": host, "program": program["name"], "state": program["state"], "uptime_s": program["uptime_s"]}
    if program["state"] != "RUNNING" or not program.get("processes"):
        return [{**base, "pid": program.get("pid", 0), "role": "main", "verdict": "not running",
                 "evidence": [f"Supervisor says {program['state']}"], "unseen": []}]  # fmt: skip
    window = float(probe.get("window_s", 0))
    # A pool process replaced during the window has no end to compare: left out, and said so.
    processes = [p for p in program["processes"] if p.get("alive", True)]
    replaced = len(program["processes"]) - len(processes)
    pool = [p for p in processes if p["role"] == "pool"]
    main = next((p for p in processes if p["role"] == "main"), {})
    # The pool size the worker was started with, else the pool processes it runs (prefork).
    concurrency = int(argv_option(main.get("argv", []), "-c", "--concurrency") or len(pool) or 0)
    rows = []
    for process in processes:
        numbers = leak_finding(process, window, thresholds)
        finding = numbers.pop("finding", "")
        row = {**base, "pid": process["pid"], "role": process["role"], **numbers,
               "fd_kinds": process.get("fd_kinds", {}), "cpu_s_in_window": process.get("cpu_s_in_window")}  # fmt: skip
        verdict, evidence, unseen = "", [], []
        if process["role"] == "main" and not program.get("links_readable", True):
            unseen = ["its descriptor links could not be read (root without CAP_SYS_PTRACE?): sockets unknown"]
        elif process["role"] == "main":
            socks = [s for s in program.get("sockets", []) if s["pid"] == process["pid"]]
            views = [(s, broker_view(s, index, sessions)) for s in socks]
            verdict, evidence, unseen = main_process_verdict(
                views, probe.get("peers", {}), concurrency, brokers_seen, thresholds
            )
            row["concurrency"] = concurrency
            peers = probe.get("peers", {})
            row["sockets"] = [{**s, "broker": v, "peer_handshake": peers.get(s["peer"])} for s, v in views]
            if program.get("strace"):
                row["strace"] = program["strace"]
            if replaced:
                unseen.append(f"{replaced} pool process(es) ended during the window: not compared")
        if finding:
            evidence.append(finding)
            verdict = verdict or "leaking"
        rows.append({**row, "verdict": verdict or "healthy", "evidence": evidence, "unseen": unseen})
    return rows


def remediation_targets(
    rows: Sequence[Mapping[str, Any]], host: str, verdicts: Sequence[str], leak_within_s: int
) -> list[str]:
    """The host's programs to restart: any of their processes judged one of `verdicts`; a leak only when it
    reaches the limit within `leak_within_s`."""
    targets: list[str] = []
    for row in rows:
        if row["host"] != host or row["verdict"] not in verdicts:
            continue
        if row["verdict"] == "leaking" and (
            row.get("time_to_limit_s") is None or row["time_to_limit_s"] > leak_within_s
        ):
            continue
        if row["program"] not in targets:
            targets.append(row["program"])
    return targets


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The fleet table printed at the end of a run: one line per process, the worst first."""
    header = ("HOST", "PROGRAM", "PID", "ROLE", "VERDICT", "FDS", "GROWTH/MIN", "SILENT_S", "PREFETCH", "READY")
    lines = [header]
    for row in sorted(rows, key=lambda r: (SEVERITY[r["verdict"]], r["host"], r["program"], r["role"] != "main")):
        socks = row.get("sockets", [])
        silent = max((s["lastrcv_ms"] / 1000 for s in socks if s["state"] == "ESTAB"), default=None)
        consumers = [c for s in socks for c in s["broker"].get("consumers", [])]
        ready = sum(q["ready"] for s in socks for q in s["broker"].get("queues", []))
        prefetch = ",".join(str(c["prefetch"]) for c in consumers)
        lines.append((
            row["host"], row["program"], str(row["pid"]), row["role"], row["verdict"],
            f"{row.get('fds', '-')}/{row.get('fd_limit', '-')}" if "fds" in row else "-",
            f"{row['fd_growth_per_min']:g}" if "fd_growth_per_min" in row else "-",
            f"{silent:.1f}" if silent is not None else "-",
            f"{prefetch}/{row['concurrency']}" if row["role"] == "main" and "concurrency" in row else "-",
            str(ready) if row["role"] == "main" and socks else "-",
        ))  # fmt: skip
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines]


def metric_line(name: str, value: float, **labels: object) -> str:
    """One sample in node_exporter's textfile format: label values escaped, the value exact (str(), never `:g`,
    which rounds a Unix time to hours)."""
    escaped = (str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for text in labels.values())
    inside = ",".join(f'{key}="{text}"' for key, text in zip(labels, escaped, strict=True))
    return f"{name}{{{inside}}} {value}" if inside else f"{name} {value}"


def textfile(rows: Sequence[Mapping[str, Any]], host: str, now: float) -> str:
    """The host's rows for node_exporter's textfile collector: a verdict per process and its descriptors."""
    out = [
        "# HELP celery_fleet_diagnosis_verdict 1 for the verdict the last diagnosis gave each Celery process.",
        "# TYPE celery_fleet_diagnosis_verdict gauge",
    ]
    mine = [row for row in rows if row["host"] == host]
    for row in mine:
        labels = {"program": row["program"], "pid": row["pid"], "role": row["role"]}
        for verdict in VERDICTS:
            out.append(metric_line("celery_fleet_diagnosis_verdict", int(row["verdict"] == verdict),
                                   **labels, verdict=verdict))  # fmt: skip
    out += [
        "# HELP celery_fleet_diagnosis_fd_growth_per_minute Descriptors gained per minute over the sample window.",
        "# TYPE celery_fleet_diagnosis_fd_growth_per_minute gauge",
    ]
    for row in mine:
        if "fd_growth_per_min" in row:
            labels = {"program": row["program"], "pid": row["pid"], "role": row["role"]}
            out.append(metric_line("celery_fleet_diagnosis_fd_growth_per_minute", row["fd_growth_per_min"], **labels))
    out += [
        "# HELP celery_fleet_diagnosis_timestamp_seconds When the last diagnosis ran.",
        "# TYPE celery_fleet_diagnosis_timestamp_seconds gauge",
        metric_line("celery_fleet_diagnosis_timestamp_seconds", round(now)),
    ]
    return "\n".join(out) + "\n"
