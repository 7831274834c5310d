"""The Celery application object: `celery -A celery_fleet_app.celery worker`."""

from typing import Any

from celery import Celery
from celery.signals import celeryd_init

from celery_fleet_app.config import celery_settings, load_config
from celery_fleet_app.handover_step import Handover

app = Celery("celery_fleet_app", include=["celery_fleet_app.tasks"])
app.conf.update(celery_settings(load_config()))
# Maintenance asks the worker to finish its tasks before its connection moves.
app.steps["consumer"].add(Handover)


@celeryd_init.connect
def name_the_connection(sender: str, conf: Any, **_: Any) -> None:
    """The broker lists the worker's connection under its node name (connection_name), so a broker's
    maintenance finds the workers connected to it through the proxies, whose addresses are all it sees. (Only this
    app's workers: the failover scenario's control and anchor apps import this module too.)"""
    if conf is not app.conf:
        return
    conf.broker_transport_options = {
        **conf.broker_transport_options,
        "client_properties": {"connection_name": sender},
    }
