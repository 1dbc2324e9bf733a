"""Payments' Celery tasks: each provider call runs here, outside any database transaction.

``run_attempt`` is sent once per charge and per refund, after the transaction
that recorded the intent commits. No Celery message is the only record of a
payment: ``resend_due``, on the beat, sends again every open phase whose time
has come (its message was lost, its worker died, or it waits for a retry).
"""

from celery import shared_task

from payments import services


@shared_task(name="payments.tasks.run_attempt")
def run_attempt(*, payment_id: int, status: str, tries: int) -> None:
    """Ask the provider for one open phase of a payment and record its answer."""
    services.payment_attempt_run(payment_id=payment_id, status=status, tries=tries)


@shared_task(name="payments.tasks.resend_due")
def resend_due() -> int:
    """Send ``run_attempt`` again for every open phase that is due; returns how many."""
    due = services.payment_attempts_due()
    for attempt in due:
        run_attempt.apply_async(
            kwargs={
                "payment_id": attempt.payment_id,
                "status": attempt.status,
                "tries": attempt.tries,
            }
        )
    return len(due)
