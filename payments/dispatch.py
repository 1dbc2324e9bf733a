"""Where a recorded charge or refund is carried out, right after its intent commits.

By default on a small pool of threads of the process that recorded it (a
worker's payments reader): the call needs nothing but the payment's id, and a
Celery message for it would cost more than the work it carries. With
``PAYMENTS_DISPATCH=celery`` it is a ``payments.tasks.run_attempt`` task instead
(sent by name), for a provider whose calls should spread over many worker processes.

Either way nothing here is the only record of anything: a call lost with its
process leaves the phase open and due, and beat's ``resend_due`` sends it again.
This module knows neither the services nor the tasks: the caller hands over
what to run.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from celery import current_app
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

logger = logging.getLogger(__name__)

RUN_ATTEMPT_TASK = "payments.tasks.run_attempt"

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def send(run: Callable[..., object], *, payment_id: int, status: str, tries: int) -> None:
    """Have ``run`` carry out one open phase of a payment, soon, outside any transaction."""
    attempt: dict[str, object] = {"payment_id": payment_id, "status": status, "tries": tries}
    if settings.PAYMENTS_DISPATCH == "celery":
        current_app.send_task(RUN_ATTEMPT_TASK, kwargs=attempt)
        return
    # The thread runs in a copy of this context: the cause (correlation id) and the
    # log fields of what recorded the phase go with the call and the events it publishes.
    _pool().submit(contextvars.copy_context().run, _run, run, attempt)


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.PAYMENTS_DISPATCH_THREADS, thread_name_prefix="payments-call"
            )
        return _executor


def _run(run: Callable[..., object], attempt: dict[str, object]) -> None:
    try:
        _call(run, attempt)
    except Exception:  # the phase stays due: beat's resend_due tries again
        logger.exception(
            "payment %s: %s try %s failed; beat will send it again",
            attempt["payment_id"],
            attempt["status"],
            attempt["tries"],
        )


def _call(run: Callable[..., object], attempt: dict[str, object]) -> None:
    """``run`` on this thread's connection, and once more on a new one if that one had died.

    What Django does for a connection between requests (close it when too old, or
    unusable after an error), without its health check's ``SELECT 1`` before every
    call: a connection that died while idle (PostgreSQL restarted) fails the run's
    first statement, its claim, before anything was done, and the run goes again.
    A run that failed later claims nothing the second time (the phase is claimed):
    it stays due, for ``resend_due``.
    """
    close_old_connections()
    connection.health_check_done = True  # type: ignore[attr-defined]  # the run checks, below
    try:
        run(**attempt)
    except (OperationalError, InterfaceError):
        if connection.connection is not None and connection.is_usable():
            raise
        connection.close()
        run(**attempt)
