"""The reference app's Celery settings, each with the failure it prevents.

The celery_worker role writes the deployment's values (broker endpoints,
credentials, limits) to a JSON file; `celery_settings()` turns them into
Celery configuration. Nothing here opens a connection, so it is unit-tested
without a broker.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from kombu import Exchange, Queue

from celery_fleet_app.handover import DEFAULT_DIRECTORY as DEFAULT_HANDOVER_DIRECTORY

CONFIG_ENV = "CELERY_FLEET_CONFIG"
DEFAULT_CONFIG_PATH = Path("/etc/celery-fleet/app.json")
# A publisher's TCP_USER_TIMEOUT (ms): see publisher_settings.
PUBLISH_TCP_USER_TIMEOUT_MS = 5_000
# The setting (ours, not Celery's) that tells the handover bootstep where maintenance's requests are.
HANDOVER_DIR_SETTING = "fleet_handover_dir"


@dataclass(frozen=True)
class TlsConfig:
    """The worker's TLS files (the pki role's) and the name it verifies in the proxy's certificate."""

    ca_file: str
    cert_file: str
    key_file: str
    # The same name on every proxy of the failover list; '' verifies the CA's signature only.
    server_name: str = ""


@dataclass(frozen=True)
class FleetConfig:
    """What the deployment decides; the role renders it as JSON."""

    broker_endpoints: list[str]
    user: str
    password: str = field(repr=False)
    vhost: str
    heartbeat: int = 10
    max_tasks_per_child: int = 100
    max_memory_per_child_kib: int = 200_000
    task_time_limit: int = 300
    task_soft_time_limit: int = 240
    keepalive_idle: int = 1
    keepalive_interval: int = 1
    keepalive_count: int = 3
    tcp_user_timeout_ms: int = 30_000
    connect_timeout: int = 3
    # A process that only publishes (publisher_settings): its socket's TCP_USER_TIMEOUT. It has no heartbeat
    # running, so this alone notices a proxy that vanished under a publish waiting for its confirm.
    publish_tcp_user_timeout_ms: int = PUBLISH_TCP_USER_TIMEOUT_MS
    completed_log: str = "/var/lib/celery-fleet/completed.log"
    # The deployment's task queues (the role declares them); the first is the default.
    queues: list[str] = field(default_factory=lambda: ["celery"])
    # Remote control (celery inspect/control) declares a pidbox queue and binding on every reconnect.
    remote_control: bool = False
    # Whether the deployment declared the queues' topology (the role does): then nothing is declared
    # at run time. False: the app declares it on every (re)connect, as Celery does by default.
    topology_declared: bool = True
    # TLS to the proxies (amqps); None connects in clear.
    tls: TlsConfig | None = None
    handover_dir: str = str(DEFAULT_HANDOVER_DIRECTORY)


def load_config(path: Path | None = None) -> FleetConfig:
    """Read the deployment's JSON file (CELERY_FLEET_CONFIG, else the default path)."""
    config_path = path or Path(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG_PATH))
    try:
        values = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"celery_fleet_app: no configuration at {config_path}; set {CONFIG_ENV}") from None
    tls = values.pop("tls", None)
    # A key this version does not know (a newer role wrote the file, --tags configure left the app as it was)
    # is left out rather than stopping every worker.
    known = {name for name in FleetConfig.__dataclass_fields__ if name != "tls"}
    return FleetConfig(
        **{key: value for key, value in values.items() if key in known}, tls=TlsConfig(**tls) if tls else None
    )


def broker_url(endpoints: list[str], user: str, password: str, vhost: str, tls: bool = False) -> str:
    """One AMQP URL per endpoint (amqps:// with TLS), joined with ';' so Celery fails over between them."""
    if not endpoints:
        raise ValueError("at least one broker endpoint (host:port) is needed")
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    scheme = "amqps" if tls else "amqp"
    return ";".join(f"{scheme}://{credentials}@{endpoint}/{quote(vhost, safe='')}" for endpoint in endpoints)


def broker_tls(tls: TlsConfig | None) -> dict[str, object] | bool:
    """Celery's broker_use_ssl: verify the peer against the fleet's CA, and show our own certificate.

    The name is fixed (server_name), not taken from each URL: kombu writes the first URL's host name into
    the shared options dict (server_hostname=None) and keeps it for every later failover target.
    """
    if tls is None:
        return False
    options: dict[str, object] = {
        "ca_certs": tls.ca_file,
        "certfile": tls.cert_file,
        "keyfile": tls.key_file,
        "cert_reqs": ssl.CERT_REQUIRED,
    }
    if tls.server_name:
        options["server_hostname"] = tls.server_name
    return options


def connection_settings(config: FleetConfig) -> dict[str, object]:
    """broker_url and broker_use_ssl: where to connect, and how to prove both ends."""
    return {
        "broker_url": broker_url(
            config.broker_endpoints, config.user, config.password, config.vhost, tls=config.tls is not None
        ),
        "broker_use_ssl": broker_tls(config.tls),
    }


def socket_settings(config: FleetConfig) -> dict[int, int]:
    """TCP options for the broker socket, keyed by the socket module's constants (as py-amqp expects)."""
    return {
        # Probe an idle connection after this many seconds (a probe that meets the new holder of a moved
        # virtual address gets a RST: the worker notices at once)...
        socket.TCP_KEEPIDLE: config.keepalive_idle,
        # ...every this many seconds...
        socket.TCP_KEEPINTVL: config.keepalive_interval,
        # ...and give up after this many unanswered probes (Linux counts them only while TCP_USER_TIMEOUT is 0).
        socket.TCP_KEEPCNT: config.keepalive_count,
        # Data unacknowledged by the peer this long (ms) kills the connection;
        # so does this long without a word from the peer while keepalive probes.
        socket.TCP_USER_TIMEOUT: config.tcp_user_timeout_ms,
    }


def task_queue(name: str, declared: bool = True) -> Queue:
    """A task queue: a quorum queue bound to a topic exchange of the same name.

    declared (by the deployment): no_declare, so neither a worker nor a
    publisher declares or binds it, on first connect or on reconnect. Under
    Mnesia a queue.bind, even of an existing binding, waits for a silent
    broker to be declared down (about 60 s); the role declares the topology
    once, at deploy time, instead. The topic exchange is what Celery's native
    delayed delivery needs.
    """
    return Queue(
        name,
        Exchange(name, type="topic", no_declare=declared),
        routing_key=name,
        # Keeps Celery off global QoS, which quorum queues refuse.
        queue_arguments={"x-queue-type": "quorum"},
        no_declare=declared,
    )


def celery_settings(config: FleetConfig) -> dict[str, object]:
    """Celery configuration; every entry names the failure it prevents."""
    return {
        # The HAProxy endpoint(s), never a broker node directly: the proxy resets
        # the connection when a broker dies. A second proxy is a failover target.
        # Over TLS, both ends proving themselves with the fleet's CA.
        **connection_settings(config),
        "broker_failover_strategy": "round-robin",
        # Heartbeats (RabbitMQ recommends 5-20 s) detect a silent broker or proxy
        # from inside AMQP, where TCP alone would wait for retransmission limits.
        "broker_heartbeat": config.heartbeat,
        # Never give up reconnecting: a worker that stops retrying after a long
        # outage stays RUNNING under Supervisor and does nothing.
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        # A connect attempt (TCP and AMQP handshake) to an unreachable endpoint
        # fails fast and moves on to the next: after a reconnect Celery starts
        # from the first endpoint again, even when that proxy has vanished.
        "broker_connection_timeout": config.connect_timeout,
        "broker_transport_options": {
            # Kernel-level detection of a dead peer on the broker socket.
            "socket_settings": socket_settings(config),
            # A publish returns only once the broker has the message: no task is
            # lost in a socket buffer when the broker dies.
            "confirm_publish": True,
        },
        # Where maintenance asks this worker to finish its tasks before its
        # connection moves (celery_fleet_app.handover_step): a planned
        # reconnect then terminates nothing.
        HANDOVER_DIR_SETTING: config.handover_dir,
        # Quorum queues are replicated across the cluster: losing one broker
        # loses no queued task. Celery then also avoids global QoS, which
        # quorum queues do not support.
        "task_default_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        # The deployment's queues, declared by the role, never at run time
        # (see task_queue); an unknown queue name is an error, not a new queue.
        "task_queues": [task_queue(name, config.topology_declared) for name in config.queues],
        "task_create_missing_queues": False,
        "task_default_queue": config.queues[0],
        "task_default_exchange": config.queues[0],
        "task_default_exchange_type": "topic",
        "task_default_routing_key": config.queues[0],
        # Celery's native delayed delivery bootstep re-declares ~110 objects on
        # every reconnect; this consumer leaves it out (the role declares them).
        # ETA and countdown tasks still wait in the broker's delay queues.
        "worker_consumer": "celery_fleet_app.consumer:Consumer"
        if config.topology_declared
        else "celery.worker.consumer:Consumer",
        # Remote control (pidbox) declares and binds on every reconnect.
        "worker_enable_remote_control": config.remote_control,
        # Ack after the task ran, and hand the task back if the worker process
        # died: a crash or a lost connection means a redelivery, not a loss.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Reserve one task at a time: tasks are not stranded unacked on a
        # worker whose connection is dying.
        "worker_prefetch_multiplier": 1,
        # Replace pool processes after this many tasks or this much memory:
        # bounds descriptor and memory leaks in task code.
        "worker_max_tasks_per_child": config.max_tasks_per_child,
        "worker_max_memory_per_child": config.max_memory_per_child_kib,
        # On connection loss, cancel tasks whose acks can no longer reach the
        # broker (they are redelivered and run again from the start). With
        # False, Celery 5.6 leaves the consumer at a lowered prefetch for good
        # on quorum queues (celery#9512; reproduced on the failover stack), and
        # the redelivered copy runs while the first run goes on. Measured, both
        # repeat as much work (docs/celery_worker.md, "Tasks in flight through
        # a reconnect").
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # A hung task cannot hold a pool process (and its unacked message) forever.
        "task_time_limit": config.task_time_limit,
        "task_soft_time_limit": config.task_soft_time_limit,
        # JSON only: no pickle from the network.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
    }


def publisher_socket_settings(config: FleetConfig) -> dict[int, int]:
    """A publisher's broker socket: dead within publish_tcp_user_timeout_ms of the proxy's last answer,
    whether or not a publish is in flight."""
    return {
        # Probe after a second of silence, every second: a publish the proxy has acknowledged, waiting for its
        # confirm, leaves nothing in flight for TCP_USER_TIMEOUT to time; the probes are. (No TCP_KEEPCNT: with
        # TCP_USER_TIMEOUT set, Linux gives up once the peer was silent that long, however many probes went.)
        socket.TCP_KEEPIDLE: 1,
        socket.TCP_KEEPINTVL: 1,
        socket.TCP_USER_TIMEOUT: config.publish_tcp_user_timeout_ms,
    }


def publisher_settings(config: FleetConfig) -> dict[str, object]:
    """Celery configuration for a process that only publishes (a web app, the tests' publisher).

    The workers' settings, but the broker socket dies after a few seconds without an answer from the proxy
    (publisher_socket_settings): a publisher runs no heartbeat, so when the proxy under a publish vanishes,
    only the kernel can notice. It never fires on a slow broker: the proxy's kernel answers whatever the
    broker does. A broker that stops confirming is HAProxy's to notice (its health check and agent).
    """
    settings = celery_settings(config)
    transport = {**settings["broker_transport_options"], "socket_settings": publisher_socket_settings(config)}
    return {**settings, "broker_transport_options": transport}
