"""The incident's configuration, for the failover scenario's control run only.

Connected straight to one broker node, with the two settings that let a
worker sit on a dead socket forever:

- AMQP heartbeats off (`broker_heartbeat = None`), as widely recommended for
  Celery on RabbitMQ to cut broker traffic ("TCP keep-alive instead");
- the kernel's own TCP behaviour on the broker socket: no TCP_USER_TIMEOUT and
  keepalive only after 2 hours. py-amqp 5 sets a 1 s TCP_USER_TIMEOUT and
  60 s keepalive of its own; with those (and heartbeats on) Celery notices a
  blackholed broker by itself, as docs/failover.md says.

A worker that never writes and never probes cannot learn that its peer is
gone. Never deploy this; it exists so the failover tests can show the
original freeze next to the fix.
"""

import socket

from celery import Celery

from celery_fleet_app.config import connection_settings, load_config

# Linux's defaults (tcp_keepalive_time/intvl/probes; 0 = no user timeout).
KERNEL_DEFAULT_SOCKET_SETTINGS = {
    socket.TCP_USER_TIMEOUT: 0,
    socket.TCP_KEEPIDLE: 7200,
    socket.TCP_KEEPINTVL: 75,
    socket.TCP_KEEPCNT: 9,
}

_config = load_config()
app = Celery("celery_fleet_control", include=["celery_fleet_app.control_tasks"])
app.conf.update(
    **connection_settings(_config),
    broker_heartbeat=None,
    broker_transport_options={"socket_settings": KERNEL_DEFAULT_SOCKET_SETTINGS},
    task_default_queue="control",
)
