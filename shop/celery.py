import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The message header that carries the cause (correlation id, causation, actor) to a task.
CAUSE_HEADER = "shop_cause"


@signals.setup_logging.connect
def _django_logging(**_: Any) -> None:
    # The worker and beat log as the web does (settings.LOGGING: plain or JSON lines with
    # the context's ids), instead of Celery replacing the root logger's handlers.
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.before_task_publish.connect
def _carry_cause(headers: dict[str, Any] | None = None, **_: Any) -> None:
    # A task sent by a handler (a payment's provider call) goes on the handler's
    # correlation id, so the events it publishes belong to the same saga in the logs.
    from outbox import context

    if headers is not None:
        headers[CAUSE_HEADER] = context.propagated()


_causes: dict[str, object] = {}  # task id -> the token of the cause it runs under


@signals.task_prerun.connect
def _adopt_cause(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    request = getattr(task, "request", None)
    if request is None or getattr(request, "is_eager", False) or task_id is None:
        return  # an eager task runs in its caller's context already
    from outbox import context

    carried = getattr(request, CAUSE_HEADER, None) or (request.headers or {}).get(CAUSE_HEADER)
    _causes[task_id] = context.set_cause(context.adopted(carried))


@signals.task_postrun.connect
def _drop_cause(task_id: str | None = None, **_: Any) -> None:
    token = _causes.pop(task_id, None) if task_id is not None else None
    if token is not None:
        from outbox import context

        context.reset_cause(token)


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
