"""Celery's own defaults, for the failover scenario's anchor run only.

What a team gets without this project: every broker node in the URL list
(Celery fails over between them), no proxy, and no tuning: Celery's and
py-amqp's default heartbeat, socket options, retries and prefetch, a direct
exchange, and the topology declared by the worker and the publisher at run
time. The failover scenario measures it under the same blackhole as the
reference app, side by side. With no max-tasks-per-child, it is also the
diagnosis test's leaking worker (molecule/failover/tests/test_diagnose.py).
"""

from celery import Celery

from celery_fleet_app import tasks
from celery_fleet_app.config import connection_settings, load_config

_config = load_config()
app = Celery("celery_fleet_anchor")
app.conf.update(
    **connection_settings(_config),
    task_default_queue="anchor",
)
record = app.task(tasks.record.run, name="celery_fleet_app.anchor.record")
leak_descriptors = app.task(tasks.leak_descriptors.run, name="celery_fleet_app.anchor.leak_descriptors")
