"""Fleet diagnosis: the worker host's evidence parsed, joined with the brokers' and proxies' view, judged.

The parsers read outputs captured from the failover stack (tests/data/diagnosis/); the verdicts are
checked case by case, each with a case that must not trip it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import diagnosis
import pytest

DATA = Path(__file__).parent / "data" / "diagnosis"
THRESHOLDS = {"leak_rate_per_min": 30, "frozen_silence_s": 60, "prefetch_multiplier": 1}
WORKER, PROXY_END, BROKER_PID = "10.0.0.31:46014", "10.0.0.21:60588", "<rabbit@b1.1.100.0>"


def test_one_spelling_of_each_address() -> None:
    # rabbitmqctl's Erlang tuples, ss's brackets, HAProxy's bare IPv6, IPv4-mapped IPv6 and zones.
    assert diagnosis.erlang_address([10, 213, 2, 21], 5671) == "10.213.2.21:5671"
    assert diagnosis.erlang_address([0xFD00, 0, 0, 0, 0, 0, 0, 0x31], 41508) == "[fd00::31]:41508"
    assert diagnosis.erlang_address("10.0.0.1", 1) == "10.0.0.1:1"
    assert diagnosis.address("[fd00::31]:41508") == "[fd00::31]:41508"
    assert diagnosis.address("fd00::31:41508") == "[fd00::31]:41508"
    assert diagnosis.address("[::ffff:10.0.0.5]:5671") == "10.0.0.5:5671"
    assert diagnosis.address("[fe80::1%eth0]:5671") == "[fe80::1]:5671"
    assert diagnosis.address("*:*") == "*:*"


def test_supervisor_status_lines() -> None:
    status = (
        "celery-default:celery-default-00   RUNNING   pid 847, uptime 1 day, 2:03:04\n"
        "celery-other:celery-other-00      FATAL     Exited too quickly (process log may have details)\n"
    )
    assert diagnosis.supervisor_programs(status) == [
        {"name": "celery-default:celery-default-00", "state": "RUNNING", "pid": 847, "uptime_s": 93784},
        {"name": "celery-other:celery-other-00", "state": "FATAL", "pid": 0, "uptime_s": 0},
    ]


def test_supervisor_rpc_process_info_reads_as_the_status_lines() -> None:
    # getAllProcessInfo() as supervisord 4.2 answers it (fields the feed does not read left out).
    infos = [
        {"name": "celery-default-00", "group": "celery-default", "statename": "RUNNING", "pid": 847,
         "start": 1796425303, "now": 1796518087, "description": "pid 847, uptime 1 day, 1:46:24"},
        {"name": "celery-other-00", "group": "celery-other", "statename": "FATAL", "pid": 0,
         "start": 1796425303, "now": 1796518087, "description": "Exited too quickly (process log may have details)"},
        {"name": "flower", "group": "flower", "statename": "STOPPED", "pid": 0, "start": 0, "now": 1796518087,
         "description": "Not started"},
        {"name": "celery-slow-00", "group": "celery-slow", "statename": "STOPPING", "pid": 912,
         "start": 1796425303, "now": 1796518087, "description": ""},
    ]  # fmt: skip
    assert diagnosis.supervisor_rpc_programs(infos) == [
        {"name": "celery-default:celery-default-00", "state": "RUNNING", "pid": 847, "uptime_s": 92784},
        {"name": "celery-other:celery-other-00", "state": "FATAL", "pid": 0, "uptime_s": 0},
        {"name": "flower", "state": "STOPPED", "pid": 0, "uptime_s": 0},
        {"name": "celery-slow:celery-slow-00", "state": "STOPPING", "pid": 0, "uptime_s": 0},
    ]


def test_a_celery_worker_and_its_options() -> None:
    argv = ["/opt/venv/bin/python3", "/opt/venv/bin/celery", "--app", "x", "worker", "--queues", "a,b"]
    assert diagnosis.is_celery_worker(argv)
    assert not diagnosis.is_celery_worker(["/usr/bin/python3", "/usr/bin/celery", "--app", "x", "beat"])
    assert not diagnosis.is_celery_worker(["/usr/sbin/sshd", "worker"])
    # `-A worker` names the app; the subcommand is beat.
    assert not diagnosis.is_celery_worker(["celery", "-A", "worker", "beat"])
    assert diagnosis.is_celery_worker(["python3", "-m", "celery", "--app=x", "worker"])
    assert diagnosis.argv_option(argv, "-Q", "--queues") == "a,b"
    assert diagnosis.argv_option(["celery", "worker", "-Qa"], "-Q", "--queues") == "a"
    assert diagnosis.argv_option(["celery", "worker", "--queues=c"], "-Q", "--queues") == "c"


def test_a_password_in_a_broker_url_is_not_reported() -> None:
    argv = ["celery", "-b", "amqps://app:s3cret@broker:5671//", "worker"]
    assert diagnosis.redacted(argv)[2] == "amqps://app:***@broker:5671//"


@pytest.mark.parametrize(
    ("target", "kind"),
    [("socket:[123]", "socket"), ("pipe:[9]", "pipe"), ("anon_inode:[eventpoll]", "eventpoll"),
     ("anon_inode:[eventfd]", "anon_inode"), ("/dev/null", "device"), ("/tmp/leak-1", "file")],
)  # fmt: skip
def test_descriptor_kinds(target: str, kind: str) -> None:
    assert diagnosis.fd_kind(target) == kind


def test_the_open_files_limit() -> None:
    limits = (DATA / "limits.txt").read_text()
    assert diagnosis.open_files_limit(limits) == 16384


def test_ss_gives_the_process_broker_socket_with_its_timings() -> None:
    sockets = diagnosis.ss_sockets((DATA / "ss.txt").read_text(), [847])
    assert len(sockets) == 1
    sock = sockets[0]
    assert (sock["state"], sock["local"], sock["peer"], sock["pid"]) == (
        "ESTAB",
        "10.213.2.31:41508",
        "10.213.2.21:5671",
        847,
    )
    assert sock["lastrcv_ms"] == 1192
    assert sock["lastsnd_ms"] == 4496
    assert sock["bytes_received"] == 4600
    assert not sock["retransmitting"]
    assert diagnosis.ss_sockets((DATA / "ss.txt").read_text(), [1]) == []


def test_haproxy_sessions_tie_the_client_to_the_proxy_end() -> None:
    sessions = diagnosis.haproxy_sessions((DATA / "show-sess-all.txt").read_text())
    # The admin socket's own session has no server: left out.
    assert sessions[0] == {"client": "10.213.2.32:53508", "backend_local": "10.213.2.21:48184",
                           "server": "fo-rabbitmq-1", "server_addr": "10.213.2.11:5671"}  # fmt: skip
    assert all(s["client"].startswith("10.") for s in sessions)


def probe(**socket: Any) -> dict[str, Any]:
    """One host with one program: a main process with a broker socket to a proxy, and two pool processes."""
    sock = {"pid": 10, "fd": 9, "state": "ESTAB", "recv_q": 0, "send_q": 0, "local": WORKER, "peer": "10.0.0.21:5671",
            "timer": "", "retransmitting": False, "unacked_segments": 0, "lastsnd_ms": 1000, "lastrcv_ms": 1000,
            "lastack_ms": 1000, "bytes_received": 500, "received_in_window": 40, "retransmitting_at_start": False,
            **socket}  # fmt: skip
    processes = [{"pid": 10, "role": "main", "fds": [20, 20, 20], "fd_limit": 4096},
                 {"pid": 11, "role": "pool", "fds": [12, 12, 12], "fd_limit": 4096},
                 {"pid": 12, "role": "pool", "fds": [12, 12, 12], "fd_limit": 4096}]  # fmt: skip
    program = {"name": "celery-default:celery-default-00", "state": "RUNNING", "pid": 10, "uptime_s": 60,
               "processes": processes, "sockets": [sock]}  # fmt: skip
    return {"w1": {"programs": [program], "peers": {"10.0.0.21:5671": {"answers": True}}, "window_s": 12.0}}


def brokers(prefetch: int = 2, ready: int = 0, heartbeat: int = 10, consumers: bool = True) -> dict[str, Any]:
    return {
        "connections": [{"pid": BROKER_PID, "name": f"{PROXY_END} -> 10.0.0.11:5671", "peer_host": [10, 0, 0, 21],
                         "peer_port": 60588, "vhost": "/fleet", "timeout": heartbeat}],
        "channels": [{"pid": "<rabbit@b1.1.101.0>", "connection": BROKER_PID}],
        "consumers": [{"queue_name": "celery", "channel_pid": "<rabbit@b1.1.101.0>", "consumer_tag": "None1",
                       "prefetch_count": prefetch}] if consumers else [],
        "queues": [{"vhost": "/fleet", "name": "celery", "messages_ready": ready, "messages_unacknowledged": 1,
                    "consumers": 1}],
    }  # fmt: skip


SESSIONS = [{"client": WORKER, "backend_local": PROXY_END, "server": "b1", "server_addr": "10.0.0.11:5671"}]


def main_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return next(row for row in rows if row["role"] == "main")


def test_a_healthy_busy_worker() -> None:
    rows = diagnosis.diagnose(probe(), brokers(ready=500), SESSIONS, THRESHOLDS)
    assert [row["verdict"] for row in rows] == ["healthy"] * 3
    sock = main_row(rows)["sockets"][0]
    assert sock["broker"]["consumers"] == [{"queue": "celery", "prefetch": 2, "tag": "None1"}]
    assert sock["broker"]["via_proxy"]
    assert sock["broker"]["server"] == "b1"
    assert sock["peer_handshake"] == {"answers": True}


def test_silence_past_two_heartbeats_with_ready_messages_is_frozen() -> None:
    rows = diagnosis.diagnose(probe(lastrcv_ms=25_000, received_in_window=0), brokers(ready=7), SESSIONS, THRESHOLDS)
    row = main_row(rows)
    assert row["verdict"] == "frozen", row
    assert "nothing received for 25.0 s (limit 20 s: 2 x its 10 s heartbeat)" in row["evidence"][0]
    assert row["evidence"][-1] == "7 ready message(s) wait in its queues"


def test_silence_with_an_empty_queue_is_not_frozen() -> None:
    rows = diagnosis.diagnose(probe(lastrcv_ms=25_000, received_in_window=0), brokers(ready=0), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "healthy"


def test_without_heartbeat_the_silence_threshold_decides() -> None:
    silent = probe(lastrcv_ms=45_000, received_in_window=0)
    rows = diagnosis.diagnose(silent, brokers(ready=3, heartbeat=0), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "healthy"
    assert any("no AMQP heartbeat" in note for note in main_row(rows)["unseen"])
    rows = diagnosis.diagnose(silent, brokers(ready=3, heartbeat=0), SESSIONS, {**THRESHOLDS, "frozen_silence_s": 30})
    assert main_row(rows)["verdict"] == "frozen"


def test_a_peer_that_does_not_answer_is_frozen() -> None:
    hosts = probe()
    hosts["w1"]["peers"]["10.0.0.21:5671"] = {"answers": False, "detail": "TimeoutError"}
    rows = diagnosis.diagnose(hosts, brokers(ready=2), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "frozen"
    assert "does not answer now (TimeoutError)" in main_row(rows)["evidence"][0]


def test_a_socket_the_far_end_closed_is_frozen() -> None:
    rows = diagnosis.diagnose(probe(state="CLOSE-WAIT"), brokers(ready=2), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "frozen"


def test_a_prefetch_below_the_pool_is_starved() -> None:
    rows = diagnosis.diagnose(probe(), brokers(prefetch=1), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "starved"
    assert main_row(rows)["evidence"] == ["prefetch celery: 1, below 2 processes x 1"]
    # An unlimited prefetch (0) is not starved.
    assert main_row(diagnosis.diagnose(probe(), brokers(prefetch=0), SESSIONS, THRESHOLDS))["verdict"] == "healthy"


def test_a_connection_without_consumer_is_not_consuming() -> None:
    rows = diagnosis.diagnose(probe(), brokers(consumers=False), SESSIONS, THRESHOLDS)
    assert main_row(rows)["verdict"] == "not consuming"


def test_no_broker_socket_is_not_consuming() -> None:
    hosts = probe()
    hosts["w1"]["programs"][0]["sockets"] = []
    assert main_row(diagnosis.diagnose(hosts, brokers(), SESSIONS, THRESHOLDS))["verdict"] == "not consuming"


def test_steady_growth_is_a_leak_with_the_time_to_the_limit() -> None:
    hosts = probe()
    hosts["w1"]["programs"][0]["processes"][1]["fds"] = [100, 110, 130]
    rows = diagnosis.diagnose(hosts, brokers(), SESSIONS, THRESHOLDS)
    leaking = [row for row in rows if row["verdict"] == "leaking"]
    assert [row["pid"] for row in leaking] == [11]
    assert leaking[0]["fd_growth_per_min"] == 150.0
    assert leaking[0]["time_to_limit_s"] == round((4096 - 130) * 60 / 150)


@pytest.mark.parametrize("fds", [[100, 130, 110], [100, 100, 100], [100, 101, 102], [20, 20, 20, 28]])
def test_growth_that_falls_back_or_is_slow_is_no_leak(fds: list[int]) -> None:
    hosts = probe()
    hosts["w1"]["programs"][0]["processes"][1]["fds"] = fds
    assert {row["verdict"] for row in diagnosis.diagnose(hosts, brokers(), SESSIONS, THRESHOLDS)} == {"healthy"}


def test_a_program_supervisor_does_not_run() -> None:
    hosts = {"w1": {"programs": [{"name": "celery-x:celery-x-00", "state": "FATAL", "pid": 0, "uptime_s": 0,
                                  "processes": []}], "peers": {}, "window_s": 12.0}}  # fmt: skip
    rows = diagnosis.diagnose(hosts, None, [], THRESHOLDS)
    assert rows[0]["verdict"] == "not running"
    assert rows[0]["evidence"] == ["Supervisor says FATAL"]


def test_without_the_brokers_it_says_what_it_could_not_see() -> None:
    row = main_row(diagnosis.diagnose(probe(), None, [], THRESHOLDS))
    assert row["verdict"] == "healthy"
    assert any("no broker of diagnose_broker_group answered" in note for note in row["unseen"])


def test_without_the_brokers_silence_alone_is_not_frozen_but_a_dead_peer_is() -> None:
    silent = probe(lastrcv_ms=500_000, received_in_window=0)
    assert main_row(diagnosis.diagnose(silent, None, [], THRESHOLDS))["verdict"] == "healthy"
    silent["w1"]["peers"]["10.0.0.21:5671"] = {"answers": False, "detail": "TimeoutError"}
    row = main_row(diagnosis.diagnose(silent, None, [], THRESHOLDS))
    assert row["verdict"] == "frozen"
    assert row["evidence"][-1] == "its queues were not seen"


def test_a_silent_connection_without_consumers_is_not_frozen() -> None:
    """Celery's event connection (gossip, heartbeats) only sends: its silence says nothing."""
    hosts = probe()
    events = {**hosts["w1"]["programs"][0]["sockets"][0], "local": "10.0.0.31:50000", "lastrcv_ms": 500_000,
              "received_in_window": 0}  # fmt: skip
    hosts["w1"]["programs"][0]["sockets"].append(events)
    sessions = [*SESSIONS, {"client": "10.0.0.31:50000", "backend_local": "10.0.0.21:60600", "server": "b1",
                            "server_addr": "10.0.0.11:5671"}]  # fmt: skip
    view = brokers(ready=9)
    view["connections"].append({"pid": "<rabbit@b1.1.200.0>", "name": "events", "peer_host": [10, 0, 0, 21],
                                "peer_port": 60600, "vhost": "/fleet", "timeout": 0})  # fmt: skip
    assert main_row(diagnosis.diagnose(hosts, view, sessions, THRESHOLDS))["verdict"] == "healthy"


def test_retransmitting_counts_only_at_both_ends_of_the_window() -> None:
    hosts = probe(retransmitting=True, lastack_ms=9000)
    assert main_row(diagnosis.diagnose(hosts, brokers(ready=3), SESSIONS, THRESHOLDS))["verdict"] == "healthy"
    hosts = probe(retransmitting=True, retransmitting_at_start=True, lastack_ms=9000)
    assert main_row(diagnosis.diagnose(hosts, brokers(ready=3), SESSIONS, THRESHOLDS))["verdict"] == "frozen"


def test_a_pool_process_that_ended_in_the_window_is_left_out() -> None:
    hosts = probe()
    hosts["w1"]["programs"][0]["processes"][1].update(alive=False, fds=[100, 110, 0])
    rows = diagnosis.diagnose(hosts, brokers(prefetch=1), SESSIONS, THRESHOLDS)
    assert [row["pid"] for row in rows] == [10, 12]
    assert "1 pool process(es) ended during the window: not compared" in main_row(rows)["unseen"]
    # One pool process left, prefetch 1: not starved.
    assert main_row(rows)["verdict"] == "healthy"


def test_the_concurrency_option_wins_over_the_children_counted() -> None:
    hosts = probe()
    hosts["w1"]["programs"][0]["processes"][0]["argv"] = ["celery", "worker", "--concurrency", "1"]
    assert main_row(diagnosis.diagnose(hosts, brokers(prefetch=1), SESSIONS, THRESHOLDS))["verdict"] == "healthy"


def test_a_host_without_a_probe_is_said_so() -> None:
    rows = diagnosis.diagnose({"w9": {}}, None, [], THRESHOLDS)
    assert [(row["host"], row["verdict"]) for row in rows] == [("w9", "not probed")]


def test_remediation_restarts_only_what_was_judged() -> None:
    rows = [
        {"host": "w1", "program": "a", "verdict": "frozen"},
        {"host": "w1", "program": "b", "verdict": "healthy"},
        {"host": "w1", "program": "c", "verdict": "leaking", "time_to_limit_s": 600},
        {"host": "w1", "program": "d", "verdict": "leaking", "time_to_limit_s": 10**6},
        {"host": "w2", "program": "e", "verdict": "frozen"},
    ]
    assert diagnosis.remediation_targets(rows, "w1", ["frozen", "starved", "leaking"], 3600) == ["a", "c"]
    assert diagnosis.remediation_targets(rows, "w1", ["starved"], 3600) == []


def test_the_table_puts_the_worst_first() -> None:
    hosts = probe(lastrcv_ms=25_000, received_in_window=0)
    lines = diagnosis.table(diagnosis.diagnose(hosts, brokers(ready=7), SESSIONS, THRESHOLDS))
    assert lines[0].split() == ["HOST", "PROGRAM", "PID", "ROLE", "VERDICT", "FDS", "GROWTH/MIN", "SILENT_S",
                                "PREFETCH", "READY"]  # fmt: skip
    assert lines[1].split() == ["w1", "celery-default:celery-default-00", "10", "main", "frozen", "20/4096", "0",
                                "25.0", "2/2", "7"]  # fmt: skip


def test_the_textfile_has_one_verdict_per_process() -> None:
    rows = diagnosis.diagnose(probe(), brokers(), SESSIONS, THRESHOLDS)
    text = diagnosis.textfile(rows, "w1", 1000.0)
    labels = 'program="celery-default:celery-default-00",pid="10",role="main"'
    assert f'celery_fleet_diagnosis_verdict{{{labels},verdict="healthy"}} 1' in text
    ones = [
        line for line in text.splitlines() if line.startswith("celery_fleet_diagnosis_verdict") and line.endswith(" 1")
    ]
    assert len(ones) == 3
    assert text.endswith("celery_fleet_diagnosis_timestamp_seconds 1000\n")


def test_a_metric_line_keeps_the_value_exact_and_escapes_labels() -> None:
    # The feed's timestamp: `:g` would print 1.79638e+09, hours off, and the stale-feed alert would misfire.
    assert diagnosis.metric_line("t_seconds", 1796378571.3127882) == "t_seconds 1796378571.3127882"
    assert diagnosis.metric_line("up", 1, program='a "b"\\c') == 'up{program="a \\"b\\"\\\\c"} 1'
