"""The proxy gives up on a silent broker before its clients give up on the proxy (docs/haproxy.md)."""

from __future__ import annotations

from celery_fleet_app.config import FleetConfig
from fleetlib.project import role_defaults


def test_the_proxy_redispatches_before_a_client_stops_waiting() -> None:
    proxy = role_defaults("haproxy")["haproxy_timeout_connect"]
    worker = role_defaults("celery_worker")["celery_worker_broker_connect_timeout"]
    app = FleetConfig(broker_endpoints=["proxy:5671"], user="celery", password="-", vhost="/").connect_timeout
    # The silent broker's timeout, then a connect to a live one, both inside the client's wait.
    assert 2 * proxy < worker == app
