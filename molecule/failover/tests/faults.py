"""The failover stack's faults (fleetlib.faults, on its hosts), its cases, and the bounds the tests hold them to.

Every bound comes from the roles' settings (see haproxy/haproxy.cfg and the
docs/failover.md); none is a number picked to pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery_fleet_app.config import PUBLISH_TCP_USER_TIMEOUT_MS
from fleetlib.faults import CONSUME_AFTER_TEARDOWN_S, PROXY_HOST_FAULTS, SCHEDULING_SLACK_S, broker_faults
from fleetlib.project import role_defaults, scenario_group_vars

GROUP_VARS = scenario_group_vars("failover")
WORKER = role_defaults("celery_worker")
HAPROXY = role_defaults("haproxy")
PASSWORD = GROUP_VARS["all"]["celery_worker_broker_password"]
VHOST = role_defaults("rabbitmq")["rabbitmq_app_vhost"]
POOLS = GROUP_VARS["celery_workers"]["celery_worker_pools"]
COMPLETED_LOG = f"{WORKER['celery_worker_home']}/completed.log"
WORKER_LOG = f"{WORKER['celery_worker_log_dir']}/celery-default-00.log"
BROKERS = ("fo-rabbitmq-1", "fo-rabbitmq-2", "fo-rabbitmq-3")
TARGET = BROKERS[0]
# Its peers, as iptables takes them (names resolved when the rule is added).
PEERS = ",".join(BROKERS[1:])
WORKERS = ("fo-worker-1", "fo-worker-2")
# Both serve every broker; the workers and publishers list both, the first first.
PROXIES = ("fo-haproxy", "fo-haproxy-2")


# HAProxy closes a session silent for this long (an idle client's, an idle producer's).
IDLE_TIMEOUT_S = min(HAPROXY["haproxy_timeout_client"], HAPROXY["haproxy_timeout_server"])
# A worker prefetches at most concurrency x prefetch multiplier (1) tasks;
# those on the connection that died come back late, never lost.
PREFETCH_BOUND = len(WORKERS) * sum(pool["concurrency"] * pool["numprocs"] for pool in POOLS)
# Countdown tasks (Task.retry(countdown=...), apply_async(countdown=...))
# published just before each fault: due after the workers consume again, they
# wait in the broker's delay queues (native delayed delivery), not in a
# worker's prefetch slots, and must complete after the fault, none early.
ETA_TASKS, ETA_COUNTDOWN_S = 4, 15
# How long the cluster may take to be whole again by itself after the heal:
# a crashed node is restarted by systemd (RestartSec 10 s) and boots.
HEAL_BOUND_S = 90


FAULTS = broker_faults(PEERS)


@dataclass(frozen=True)
class Case:
    fault: str
    # Where the task queue's quorum leader is when the fault hits: on the
    # faulted broker (one fault in three does that) or on another.
    leader_on_target: bool
    # How long the fault lasts at least. 0: a few seconds of tasks flowing
    # under it, shorter than net_ticktime (60 s), so Erlang never sees the
    # peer go down. 90: beyond net_ticktime, so it does (the partition trap),
    # and long enough for the incident runs (control, anchor) to show what they do.
    hold_s: float = 0.0
    incident_runs: bool = False

    @property
    def name(self) -> str:
        return f"{self.fault}/leader-{'on-target' if self.leader_on_target else 'elsewhere'}"


CASES = [
    Case("blackhole", leader_on_target=False, hold_s=90, incident_runs=True),
    Case("blackhole", leader_on_target=True),
    Case("one-way-loss", leader_on_target=False),
    Case("one-way-loss", leader_on_target=True),
    Case("freeze", leader_on_target=False),
    Case("freeze", leader_on_target=True),
    Case("partition", leader_on_target=True, hold_s=90),
    Case("partition", leader_on_target=False),
    Case("crash", leader_on_target=False),
    Case("crash", leader_on_target=True),
]


# --- The proxy tier -----------------------------------------------------------
# A proxy that vanishes (or a worker whose packets to it are lost) sends no
# RST: only the worker's own AMQP heartbeat and socket settings can notice.
HEARTBEAT_S = WORKER["celery_worker_broker_heartbeat"]
CONNECT_TIMEOUT_S = WORKER["celery_worker_broker_connect_timeout"]
# py-amqp checks every heartbeat / 2 (Celery's rate 2) whether anything
# arrived, and gives up once nothing did for 2 heartbeats; it notes "something
# arrived" only at a check. Worst case: one check to note the last frame, two
# heartbeats, one more check: 2 x 10 + 2 x 5 = 30 s. The other paths end no
# later: when only the worker's own packets are lost it still receives, but
# RabbitMQ misses its heartbeats (2 heartbeats, checked every heartbeat) and
# HAProxy's `timeout client` (30 s) closes the session, and TCP_USER_TIMEOUT
# (celery_worker_tcp_user_timeout, 30 s) ends a connection whose sent data
# stays unacknowledged.
SILENT_PROXY_DETECTION_S = min(
    2 * HEARTBEAT_S + 2 * HEARTBEAT_S / 2,
    HAPROXY["haproxy_timeout_client"],
    HEARTBEAT_S + WORKER["celery_worker_tcp_user_timeout"] / 1000,
)
# Noticing, the worker reconnects: Celery tries the first proxy of its list
# again, which costs one connect timeout while it is gone, then the next.
# Over TLS, closing the dead connection costs up to one more first: py-amqp's
# SSL transport keeps the handshake's timeout (the connect timeout) on its
# socket, and unwrap() waits that long for the vanished peer's close_notify
# (measured: 6.08 s from noticing to connected, 3.02 s in clear).
TLS_CLOSE_S = CONNECT_TIMEOUT_S if WORKER["celery_worker_broker_tls"] else 0
RECONNECT_BOUND_S = CONNECT_TIMEOUT_S + TLS_CLOSE_S + SCHEDULING_SLACK_S
# A publisher blocked on the vanished proxy (waiting for a confirm) has no
# heartbeat running: its own short TCP_USER_TIMEOUT (publisher_settings) ends
# its connection, and its next attempt goes to the next proxy, which is up
# (no connect timeout spent; the socket already failed, so no TLS close wait).
# Until then no new task exists to consume.
PUBLISHER_DETECTION_S = PUBLISH_TCP_USER_TIMEOUT_MS / 1000
# The longest single publish while every broker runs (proxy faults, planned
# operations): a dead proxy under it is noticed as above, then it goes out
# again through the next. (Under a broker fault, HAProxy's teardown of the
# broker's sessions ends it: test_failover.py's publisher bound.)
PUBLISH_BOUND_S = PUBLISHER_DETECTION_S + SCHEDULING_SLACK_S
# The longest stall in task completions for a silent proxy: whichever of the
# workers and the publisher comes back last, then a task's round trip.
SILENT_PROXY_STALL_BOUND_S = (
    max(SILENT_PROXY_DETECTION_S + RECONNECT_BOUND_S, PUBLISH_BOUND_S) + SCHEDULING_SLACK_S + CONSUME_AFTER_TEARDOWN_S
)


@dataclass(frozen=True)
class ProxyFault:
    # Commands run as root on `on` (a proxy or a worker); with `playbook`, that
    # playbook's extra arguments, run from the control node against `on`.
    inject: str
    heal: str
    on: str
    # The workers whose connection it ends; none may lose it when empty.
    hits: tuple[str, ...] = WORKERS
    # From the fault to each hit worker noticing (None: paced by an operator's playbook).
    detection_bound_s: float | None = None
    # The fleet's longest stall in task completions (and, from noticing, each hit worker's consuming again).
    stall_bound_s: float = RECONNECT_BOUND_S + CONSUME_AFTER_TEARDOWN_S
    playbook: str = ""
    # The proxy the hit workers must reconnect through ("": either).
    moves_to: str = ""


PROXY_FAULTS = {
    # HAProxy dies (systemd restarts it): its kernel resets every session.
    "proxy-crash": ProxyFault(*PROXY_HOST_FAULTS["proxy-crash"], PROXIES[0],
                              detection_bound_s=SCHEDULING_SLACK_S),
    # The proxy host vanishes: the incident one tier up.
    "proxy-vanishes": ProxyFault(*PROXY_HOST_FAULTS["proxy-vanishes"], PROXIES[0],
                                 detection_bound_s=SILENT_PROXY_DETECTION_S + SCHEDULING_SLACK_S,
                                 stall_bound_s=SILENT_PROXY_STALL_BOUND_S, moves_to=PROXIES[1]),
    # One worker's packets to its proxy are lost; it still hears the proxy.
    "worker-cut-from-proxy": ProxyFault(f"iptables -I OUTPUT -d {PROXIES[0]} -j DROP",
                                        f"iptables -D OUTPUT -d {PROXIES[0]} -j DROP", WORKERS[0], hits=WORKERS[:1],
                                        detection_bound_s=SILENT_PROXY_DETECTION_S + SCHEDULING_SLACK_S,
                                        stall_bound_s=SILENT_PROXY_STALL_BOUND_S, moves_to=PROXIES[1]),
    # A configuration change applied by the role's handler (a reload) under load.
    "reload": ProxyFault("--extra-vars '{\"haproxy_maxconn\": 4097}'", "", PROXIES[0], hits=(),
                         playbook="playbooks/haproxy.yml"),
    # An operator takes the proxy out of service (clients moved off it first), then back in.
    "maintenance": ProxyFault("--extra-vars haproxy_maintenance=drain", "--extra-vars haproxy_maintenance=resume",
                              PROXIES[0], playbook="playbooks/haproxy-maintenance.yml", moves_to=PROXIES[1]),
}  # fmt: skip
