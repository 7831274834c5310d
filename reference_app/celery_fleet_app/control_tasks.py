"""The control app's one task: record completion like the reference app's `record`."""

from celery_fleet_app import tasks
from celery_fleet_app.control import app

record = app.task(tasks.record.run, name="celery_fleet_app.control_tasks.record")
