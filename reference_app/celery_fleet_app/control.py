"""The incident's configuration, for the failover scenario's control run only.

Celery's defaults, connected straight to one broker node: no proxy, no
socket settings, the default 120 s heartbeat. Never deploy this; it exists so
the failover tests can show the original freeze next to the fix.
"""

from celery import Celery

from celery_fleet_app.config import broker_url, load_config

_config = load_config()
app = Celery("celery_fleet_control", include=["celery_fleet_app.control_tasks"])
app.conf.broker_url = broker_url(_config.broker_endpoints, _config.user, _config.password, _config.vhost)
app.conf.task_default_queue = "control"
