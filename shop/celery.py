import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_broken_connections(sender: object = None, **_: object) -> None:
    # What Django does around each request: a connection that failed (the database
    # restarted) or outlived CONN_MAX_AGE is closed, and the next query opens a new one.
    # Not for a task applied eagerly, inside its caller's transaction.
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
