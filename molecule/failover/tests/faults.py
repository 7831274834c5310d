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
SHORT_POOLS = [pool for pool in POOLS if "celery" in pool["queues"]]
PREFETCH_BOUND = len(WORKERS) * sum(pool["concurrency"] * pool["numprocs"] for pool in SHORT_POOLS)
# Tasks that take seconds, on a queue and a pool of their own on each worker
# (real fleets route long tasks apart): a fault cuts them mid-run.
LONG_QUEUE = "long"
[LONG_POOL] = [pool for pool in POOLS if LONG_QUEUE in pool["queues"]]
LONG_TASK = "celery_fleet_app.tasks.work"
LONG_TASK_S = 3.0
# Each pool process runs one at a time (prefetch multiplier 1): the pools finish
# 2 workers x 2 processes / 3 s = 1.33 a second. Published as fast, every
# process stays busy while the fleet consumes.
LONG_INTERVAL_S = LONG_TASK_S / (len(WORKERS) * LONG_POOL["concurrency"] * LONG_POOL["numprocs"])
# What each worker's consumer of a queue should prefetch: concurrency x the
# prefetch multiplier (1, celery_settings), as the brokers hold it.
CONSUMER_PREFETCH = {pool["queues"][0]: [pool["concurrency"]] * len(WORKERS) * pool["numprocs"] for pool in POOLS}
STARTED_LOG = f"{WORKER['celery_worker_home']}/started.log"
LONG_LOG = f"{WORKER['celery_worker_log_dir']}/celery-{LONG_POOL['name']}-00.log"
# Countdown tasks (Task.retry(countdown=...), apply_async(countdown=...))
# published just before each fault: due after the workers consume again, they
# wait in the broker's delay queues (native delayed delivery), not in a
# worker's prefetch slots, and must complete after the fault, none early.
ETA_TASKS, ETA_COUNTDOWN_S = 4, 15
# How long the cluster may take to be whole again by itself after the heal:
# a crashed node is restarted by systemd (RestartSec 10 s) and boots.
HEAL_BOUND_S = 90
# Erlang's default, which the role keeps: a node gives up on a silent peer between 0.75 and 1.25 times it.
NET_TICKTIME_S = 60
ERLANG_NOTICE_BOUND_S = 1.25 * NET_TICKTIME_S + 30


FAULTS = broker_faults(PEERS)


@dataclass(frozen=True)
class Case:
    fault: str
    # Where the task queue's quorum leader is when the fault hits: on the
    # faulted broker (one fault in three does that) or on another.
    leader_on_target: bool
    # How long the fault lasts at least. 0: a few seconds of tasks flowing
    # under it, shorter than net_ticktime (60 s), so Erlang never sees the
    # peer go down. 90: beyond net_ticktime, so it does, and long enough for
    # the incident runs (control, anchor) to show what they do.
    hold_s: float = 0.0
    incident_runs: bool = False
    # Held until every node has logged the nodes across the cut down (Erlang
    # gave up on them: the partition trap), then a few seconds more.
    beyond_net_ticktime: bool = False

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
    Case("partition", leader_on_target=True, beyond_net_ticktime=True),
    Case("partition", leader_on_target=False),
    Case("crash", leader_on_target=False),
    Case("crash", leader_on_target=True),
]


# --- The proxy tier -----------------------------------------------------------
# The proxies share a virtual address (keepalived); the workers and the
# publisher connect to it alone. Each fault hits the proxy that holds it.
VIRTUAL_ADDRESS = GROUP_VARS["all"]["haproxy_virtual_address"]
HOLDER, PEER = "the holder", "its peer"
HEARTBEAT_S = WORKER["celery_worker_broker_heartbeat"]
CONNECT_TIMEOUT_S = WORKER["celery_worker_broker_connect_timeout"]
ADVERT_INT_S = HAPROXY["haproxy_vrrp_advert_int"]
# A peer takes the address over once it missed three advertisements, plus its
# skew time (below one advertisement), and announces it (gratuitous ARP).
TAKEOVER_S = 3 * ADVERT_INT_S + ADVERT_INT_S
# keepalived's check of HAProxy (roles/haproxy/vars/main.yml): every second,
# two failures in a row give the address up (priority 0: the peer takes it at once).
CHECK_GIVES_UP_S = 2 * 1 + ADVERT_INT_S
# Once the address moved, a worker's next segment reaches the new holder,
# whose kernel has no such connection and answers with a RST. An idle
# connection sends a keepalive probe every second
# (celery_worker_socket_keepalive_interval); one with unacknowledged data
# retransmits, each time after twice the wait before (from 0.2 s), so its
# next retransmission after the move comes within the move's time again.
MOVE_NOTICED_S = TAKEOVER_S + max(TAKEOVER_S, WORKER["celery_worker_socket_keepalive_interval"])
# A worker noticing through a RST or a FIN reconnects to the address, now
# served: one TLS handshake, no connect timeout spent.
ADDRESS_RECONNECT_S = CONNECT_TIMEOUT_S + SCHEDULING_SLACK_S
# A worker whose connection HAProxy's own end closed tries the address at
# once, while the holder still has it: refused. With one endpoint, kombu
# sleeps 2 s, then 4, then 6 between tries (interval_start 2, step 2); the
# first try once the check gave the address up meets the new holder.
RETRIES_AT_S = (0, 2, 6, 12)
REFUSED_RECONNECT_S = next(at for at in RETRIES_AT_S if at >= CHECK_GIVES_UP_S) + CONNECT_TIMEOUT_S + SCHEDULING_SLACK_S
# What the goal holds every single proxy fault to: the longest stall
# in task completions, and (the address staying where it moved) the longest
# once the fault healed.
STALL_GOAL_S = 10.0
SECOND_STALL_BOUND_S = 2.0

# A worker cut off from the address (its packets to it lost) has only its own
# AMQP heartbeat and socket settings: py-amqp checks every heartbeat / 2
# (Celery's rate 2) whether anything arrived, and gives up once nothing did
# for 2 heartbeats; it notes "something arrived" only at a check. Worst case:
# one check to note the last frame, two heartbeats, one more check: 2 x 10 +
# 2 x 5 = 30 s. The other paths end no later: RabbitMQ misses its heartbeats
# and HAProxy's `timeout client` (30 s) closes the session, and
# TCP_USER_TIMEOUT (celery_worker_tcp_user_timeout, 30 s) ends a connection
# whose sent data stays unacknowledged.
SILENT_PROXY_DETECTION_S = min(
    2 * HEARTBEAT_S + 2 * HEARTBEAT_S / 2,
    HAPROXY["haproxy_timeout_client"],
    HEARTBEAT_S + WORKER["celery_worker_tcp_user_timeout"] / 1000,
)
# One failed reconnect (a connection left hanging: docs/failover.md, "A
# reconnect that meets the DOWN"): a connect timeout, and over TLS one more
# to close it: py-amqp's SSL transport keeps the handshake's timeout on its
# socket, and unwrap() waits that long for the silent peer's close_notify.
TLS_CLOSE_S = CONNECT_TIMEOUT_S if WORKER["celery_worker_broker_tls"] else 0
RECONNECT_BOUND_S = CONNECT_TIMEOUT_S + TLS_CLOSE_S + SCHEDULING_SLACK_S
# A publisher blocked on a vanished proxy (waiting for a confirm) has no
# heartbeat running: its own short TCP_USER_TIMEOUT (publisher_settings) ends
# its connection at the latest; the RST from the new holder, sooner.
PUBLISHER_DETECTION_S = PUBLISH_TCP_USER_TIMEOUT_MS / 1000
# The longest single publish while every broker runs (proxy faults, planned
# operations). (Under a broker fault, HAProxy's teardown of the broker's
# sessions ends it: test_failover.py's publisher bound.)
PUBLISH_BOUND_S = PUBLISHER_DETECTION_S + SCHEDULING_SLACK_S
# The longest stall in task completions once the address moved: whichever of
# the workers and the publisher comes back last, then a task's round trip.
MOVED_STALL_BOUND_S = MOVE_NOTICED_S + ADDRESS_RECONNECT_S + CONSUME_AFTER_TEARDOWN_S


@dataclass(frozen=True)
class ProxyFault:
    # Commands run as root on `on` (HOLDER: the proxy holding the address when
    # the fault begins, or a worker); with `playbook`, that playbook's extra
    # arguments, run from the control node against `on`.
    inject: str
    heal: str
    on: str = HOLDER
    # The workers whose connection it ends; none may lose it when empty.
    hits: tuple[str, ...] = WORKERS
    # From the fault to each hit worker noticing (None: paced by an operator's playbook).
    detection_bound_s: float | None = None
    # The fleet's longest stall in task completions (and, from noticing, each hit worker's consuming again).
    stall_bound_s: float = ADDRESS_RECONNECT_S + CONSUME_AFTER_TEARDOWN_S
    playbook: str = ""
    # Where the address is once the fault began (PEER: it moved; "": it stays).
    moves_to: str = PEER
    # Whether the hit workers can reconnect before the heal (a worker cut off
    # from the address cannot), and from noticing to connected again.
    reconnects_under_fault: bool = True
    reconnect_bound_s: float = ADDRESS_RECONNECT_S
    # The longest stall once the fault healed: the address stays where it moved.
    after_heal_bound_s: float = SECOND_STALL_BOUND_S
    # Whether the holder gives the address up under the fault (keepalived's
    # check fails once its HAProxy sees no broker), so it does not take it
    # back when the fault heals.
    holder_gives_up: bool = False
    # A planned operation that ends no worker's connection throws no work away.
    planned: bool = False


PROXY_FAULTS = {
    # HAProxy dies: its kernel resets every session; systemd restarts it, and
    # the address stays unless the restart takes longer than the check allows.
    "proxy-crash": ProxyFault(*PROXY_HOST_FAULTS["proxy-crash"],
                              detection_bound_s=SCHEDULING_SLACK_S, reconnect_bound_s=REFUSED_RECONNECT_S,
                              stall_bound_s=REFUSED_RECONNECT_S + CONSUME_AFTER_TEARDOWN_S, moves_to=""),
    # The proxies stop hearing each other (VRRP lost both ways), both healthy:
    # both hold the address, the clients follow the peer's announcement. When
    # it heals, the higher priority keeps it: a second move (docs/proxies.md).
    # Second in this list, so it usually hits the first holder, the highest
    # priority (the crash before leaves the address where it is), and the heal
    # moves it back; on the other proxy the heal leaves it (both measured).
    "split-brain": ProxyFault("iptables -I INPUT -p vrrp -j DROP && iptables -I OUTPUT -p vrrp -j DROP",
                              "iptables -D INPUT -p vrrp -j DROP && iptables -D OUTPUT -p vrrp -j DROP",
                              detection_bound_s=MOVE_NOTICED_S + SCHEDULING_SLACK_S,
                              stall_bound_s=MOVED_STALL_BOUND_S, after_heal_bound_s=STALL_GOAL_S),
    # HAProxy is stopped and stays so while the host runs: the check gives the address up.
    "haproxy-stopped": ProxyFault("systemctl stop haproxy", "systemctl start haproxy",
                                  detection_bound_s=SCHEDULING_SLACK_S, reconnect_bound_s=REFUSED_RECONNECT_S,
                                  stall_bound_s=REFUSED_RECONNECT_S + CONSUME_AFTER_TEARDOWN_S),
    # The holder vanishes from the network: the incident one tier up. Its
    # HAProxy, cut off from every broker, fails the check, so it does not
    # take the address back when it returns.
    "proxy-vanishes": ProxyFault(*PROXY_HOST_FAULTS["proxy-vanishes"],
                                 detection_bound_s=MOVE_NOTICED_S + SCHEDULING_SLACK_S,
                                 stall_bound_s=MOVED_STALL_BOUND_S, holder_gives_up=True),
    # keepalived dies on the holder (systemd restarts it): the peer stops
    # hearing it and takes the address; the restarted one comes back as backup.
    "keepalived-killed": ProxyFault("systemctl kill --signal=SIGKILL keepalived", "true",
                                    detection_bound_s=MOVE_NOTICED_S + SCHEDULING_SLACK_S,
                                    stall_bound_s=MOVED_STALL_BOUND_S),
    # One worker's packets to the address are lost; it still hears the proxy.
    # Nothing moves: only its heartbeat notices, and it reconnects once the
    # path heals. The rest of the fleet carries on.
    "worker-cut-from-proxy": ProxyFault(f"iptables -I OUTPUT -d {VIRTUAL_ADDRESS} -j DROP",
                                        f"iptables -D OUTPUT -d {VIRTUAL_ADDRESS} -j DROP", WORKERS[0],
                                        hits=WORKERS[:1], moves_to="", reconnects_under_fault=False,
                                        detection_bound_s=SILENT_PROXY_DETECTION_S + SCHEDULING_SLACK_S,
                                        stall_bound_s=STALL_GOAL_S),
    # A configuration change applied by the role's handler (a reload) under load.
    "reload": ProxyFault("--extra-vars '{\"haproxy_maxconn\": 4097}'", "", hits=(), moves_to="",
                         playbook="playbooks/haproxy.yml", planned=True),
    # An operator takes the proxy out of service (the address handed over,
    # clients moved off it), then back in. Moving the address resets every
    # connection through it, so the workers first finish their tasks, taking
    # no new ones (the handover): nothing is thrown away, and the fleet takes
    # no task until the longest one in flight ends and the address has moved.
    "maintenance": ProxyFault("--extra-vars haproxy_maintenance=drain", "--extra-vars haproxy_maintenance=resume",
                              playbook="playbooks/haproxy-maintenance.yml", planned=True,
                              stall_bound_s=STALL_GOAL_S),
}  # fmt: skip
