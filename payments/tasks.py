"""Payments' Celery tasks: provider calls outside any database transaction.

``run_attempt`` carries out one open phase of a payment: sent after the intent
commits when ``PAYMENTS_DISPATCH=celery`` (by default a thread of the recording
process does it, see ``payments.dispatch``), and by ``resend_due``, on the
beat, for every open phase whose time has come (its call was lost with its
process, or it waits for a retry): no message is the only record of a payment.
"""

from celery import shared_task

from payments import dispatch, services


@shared_task(name=dispatch.RUN_ATTEMPT_TASK)
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
