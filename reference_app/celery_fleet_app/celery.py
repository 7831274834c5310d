"""The Celery application object: `celery -A celery_fleet_app.celery worker`."""

from celery import Celery

from celery_fleet_app.config import celery_settings, load_config

app = Celery("celery_fleet_app", include=["celery_fleet_app.tasks"])
app.conf.update(celery_settings(load_config()))
