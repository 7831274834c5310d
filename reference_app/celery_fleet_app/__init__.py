"""Reference Celery app deployed by the celery_worker role when no app of your own is given."""
