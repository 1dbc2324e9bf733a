"""Where a recorded charge or refund is carried out, right after its intent commits.

By default on a small pool of threads of the process that recorded it (a
worker's payments reader): the call needs nothing but the payment's id, and a
Celery message for it would cost more than the work it carries. With
``PAYMENTS_DISPATCH=celery`` it is a ``payments.tasks.run_attempt`` task instead,
for a provider whose calls should spread over many worker processes.

Either way nothing here is the only record of anything: a call lost with its
process leaves the phase open and due, and beat's ``resend_due`` sends it again.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def send(payment_id: int, status: str, tries: int) -> None:
    """Have one open phase of a payment carried out, soon, outside any transaction."""
    if settings.PAYMENTS_DISPATCH == "celery":
        from payments import tasks

        tasks.run_attempt.apply_async(
            kwargs={"payment_id": payment_id, "status": status, "tries": tries}
        )
        return
    # The thread runs in a copy of this context: the cause (correlation id) and the
    # log fields of what recorded the phase go with the call and the events it publishes.
    _pool().submit(contextvars.copy_context().run, _run, payment_id, status, tries)


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.PAYMENTS_DISPATCH_THREADS, thread_name_prefix="payments-call"
            )
        return _executor


def _run(payment_id: int, status: str, tries: int) -> None:
    from payments import services

    close_old_connections()  # this thread's connection, if it broke since its last call
    try:
        services.payment_attempt_run(payment_id=payment_id, status=status, tries=tries)
    except Exception:  # the phase stays due: beat's resend_due tries again
        logger.exception(
            "payment %s: %s try %s failed; beat will send it again", payment_id, status, tries
        )
