"""Charging orders and refunding them, in phases, each with the events it publishes.

No money moves inside a database transaction. Each charge and each refund:

1. is recorded as an intent (a PENDING or REFUNDING payment with the phase's
   idempotency key) in the caller's transaction, the consumer's, which has it
   carried out once it commits (``payments.dispatch``: a thread of the same
   process, or a Celery task) (``payment_charge_for_order``, ``payment_refund_for_order``);
2. is asked of the provider outside any transaction, with that key
   (``payment_attempt_run``);
3. has the provider's answer recorded in a new transaction, with its event
   (``payments.PaymentProcessed``, ``PaymentFailed``, ``PaymentRefunded``).

An answer lost to a timeout is asked for by key (``status``), and the call is
made again with the same key if nothing happened. A run that dies before it
records leaves the phase open: the beat (``payment_attempts_due``) sends it
again once it is due, and the next run asks by key first. The provider moves
money at most once per key, so a charge is never taken twice.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import outbox
from outbox import context as outbox_context
from payments import dispatch
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded
from payments.models import Payment
from payments.provider import (
    Outcome,
    PaymentProvider,
    ProviderError,
    ProviderTimeout,
    get_provider,
)
from shop import failpoints
from shop.db import Lookup, insert_unless_exists, save_fields
from shop.errors import DomainError
from shop.money import money_parse

logger = logging.getLogger(__name__)

_PAYMENT_OF_ORDER = Lookup(Payment, "order_id")
_PAYMENT_OF_ORDER_FOR_UPDATE = Lookup(Payment, "order_id", lock="update")
_PAYMENT_FOR_UPDATE = Lookup(Payment, "pk", lock="update")

REASON_PROVIDER_UNAVAILABLE = "payment provider unavailable"
OPEN = (Payment.Status.PENDING, Payment.Status.REFUNDING)


@dataclass(frozen=True)
class DueAttempt:
    """An open phase the beat sends again: the arguments of ``payment_attempt_run``."""

    payment_id: int
    status: str
    tries: int


def _resend_at(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.PAYMENTS_RESEND_AFTER_S)


def _retry_at(now: datetime, tries: int) -> datetime:
    delay = min(
        settings.PAYMENTS_RETRY_BACKOFF_S * 2 ** max(tries - 1, 0),
        settings.PAYMENTS_RETRY_BACKOFF_MAX_S,
    )
    return now + timedelta(seconds=delay)


# --- recording the intent (in the caller's transaction) ----------------------------------


def payment_charge_for_order(
    *,
    order_id: int,
    customer_id: int,
    amount: Decimal | str,
    currency: str,
    payment_token: str,
) -> Payment:
    """Record that an order's amount is to be charged (PENDING); the provider is asked after commit.

    Once the caller's transaction commits, ``payments.tasks.run_attempt`` charges
    with the payment's ``charge_key`` and records the outcome: CAPTURED with
    ``payments.PaymentProcessed``, or FAILED with ``payments.PaymentFailed``. A
    second call for an order that has a payment (of any status) returns it and
    records nothing. Raises ``DomainError`` for a negative or malformed amount or
    a currency that is not a 3-letter code; nothing is written then.
    """
    amount = money_parse(amount, field="amount")
    if len(currency) != 3 or not currency.isalpha():
        raise DomainError(f"{currency!r} is not a currency code.", field="currency")
    currency = currency.upper()
    with outbox.atomic():
        failpoints.reach("payments.charge_for_order")
        existing = _PAYMENT_OF_ORDER.get(order_id)
        if existing is not None:
            logger.info("order %s already has a %s payment", order_id, existing.status)
            return existing
        payment = Payment(
            order_id=order_id,
            customer_id=customer_id,
            amount=amount,
            currency=currency,
            payment_token=payment_token,
            status=Payment.Status.PENDING,
            due_at=_resend_at(timezone.now()),
        )
        if not insert_unless_exists(payment):
            # A concurrent delivery for the same order inserted first and committed.
            logger.info("order %s was charged concurrently", order_id)
            return Payment.objects.get(order_id=order_id)
        _send_after_commit(payment)
    return payment


def payment_refund_for_order(*, order_id: int) -> Payment | None:
    """Record that an order's payment is to be given back in full.

    CAPTURED: the payment becomes REFUNDING with its own ``refund_key``, and
    once the caller's transaction commits ``payments.tasks.run_attempt`` refunds
    it and records REFUNDED with ``payments.PaymentRefunded``. PENDING (the
    charge is in flight): the capture, if it comes, is refunded as soon as it
    is recorded. Does nothing (and returns what there is) when the order has no
    payment, or it failed or is refunded or refunding already, so a repeated
    cancel is harmless.
    """
    with outbox.atomic():
        payment = _PAYMENT_OF_ORDER_FOR_UPDATE.get(order_id)
        if payment is None:
            logger.info("no payment for order %s to refund: ignored", order_id)
            return None
        if payment.status == Payment.Status.PENDING:
            if not payment.refund_requested:
                payment.refund_requested = True
                payment.save(update_fields=["refund_requested", "updated_at"])
            return payment
        if payment.status != Payment.Status.CAPTURED:
            logger.info(
                "payment for order %s is %s, not CAPTURED: refund ignored", order_id, payment.status
            )
            return payment
        _refund_start(payment)
    return payment


def _refund_start(payment: Payment) -> None:
    payment.status = Payment.Status.REFUNDING
    payment.refund_key = uuid.uuid4()
    payment.tries = 0
    payment.due_at = _resend_at(timezone.now())
    payment.save(update_fields=["status", "refund_key", "tries", "due_at", "updated_at"])
    _send_after_commit(payment)


def _send_after_commit(payment: Payment) -> None:
    if not settings.PAYMENTS_DISPATCH_ON_COMMIT:
        return
    payment_id, status, tries = payment.pk, payment.status, payment.tries

    def send_attempt_after_commit() -> None:  # a function: Django names it if it raises
        _send_attempt(payment_id, status, tries)

    # The task goes on the correlation id of what caused the charge (the saga, in the logs).
    transaction.on_commit(outbox_context.keeping_cause(send_attempt_after_commit), robust=True)


def _send_attempt(payment_id: int, status: str, tries: int) -> None:
    # After commit: a lost call delays the phase until the beat finds it due.
    dispatch.send(payment_attempt_run, payment_id=payment_id, status=status, tries=tries)


# --- asking the provider (outside any transaction) ---------------------------------------

_CLAIM = (
    "UPDATE payments_payment SET tries = tries + 1, due_at = %s, updated_at = %s "
    "WHERE id = %s AND status = %s AND tries = %s RETURNING *"
)


def payment_attempt_run(*, payment_id: int, status: str, tries: int) -> Payment | None:
    """Ask the provider for the payment's open phase and record its answer.

    ``status`` and ``tries`` are the phase and the number of calls made in it
    when the run was sent: the run first claims the phase by raising ``tries``
    from that number (one statement, committed at once), so of two runs sent
    for the same try only one goes on. A claimed phase stays due after
    ``PAYMENTS_RESEND_AFTER_S``, in case this run dies before it records.
    A try after the first asks the provider by key before calling again. An
    answer that does not come (a timeout whose status is unknown too, a
    provider error) leaves the phase open, due again after a backoff; a charge
    still unanswered after ``PAYMENTS_MAX_TRIES`` is recorded as FAILED if the
    provider says it has done nothing. Refunds are tried until they are answered.

    Returns the payment as recorded, or None when the claim found the phase
    closed or claimed already. Must run outside any database transaction.
    """
    now = timezone.now()
    params = [
        connection.ops.adapt_datetimefield_value(_resend_at(now)),
        connection.ops.adapt_datetimefield_value(now),
        payment_id,
        status,
        tries,
    ]
    claimed = next(iter(Payment.objects.raw(_CLAIM, params)), None)
    if claimed is None:
        logger.info(
            "payment %s: %s try %s was claimed or closed already", payment_id, status, tries
        )
        return None
    provider = get_provider()
    if status == Payment.Status.PENDING:
        key = str(claimed.charge_key)
        outcome, why = _ask(
            provider,
            key,
            first_try=claimed.tries == 1,
            call=lambda: provider.charge(
                idempotency_key=key,
                token=claimed.payment_token,
                amount=claimed.amount,
                currency=claimed.currency,
            ),
        )
        if outcome is None and claimed.tries >= settings.PAYMENTS_MAX_TRIES:
            outcome = _give_up(provider, key)
    else:
        key = str(claimed.refund_key)
        outcome, why = _ask(
            provider,
            key,
            first_try=claimed.tries == 1,
            call=lambda: provider.refund(
                idempotency_key=key,
                charge_reference=claimed.charge_reference,
                amount=claimed.amount,
            ),
        )
    failpoints.reach("payments.attempt.before_record", key=claimed.order_id)
    return _record(claimed, outcome, why)


def _ask(
    provider: PaymentProvider, key: str, *, first_try: bool, call
) -> tuple[Outcome | None, str]:
    """The provider's answer for one key, or None and why there is none."""
    try:
        if not first_try:
            # An earlier run may have died, or timed out, after the provider acted.
            outcome = provider.status(idempotency_key=key)
            if outcome is not None:
                return outcome, ""
        try:
            return call(), ""
        except ProviderTimeout:
            outcome = provider.status(idempotency_key=key)
            if outcome is not None:
                return outcome, ""
            return call(), ""  # nothing happened: the same key once more
    except (ProviderTimeout, ProviderError) as exc:
        return None, str(exc)


def _give_up(provider: PaymentProvider, key: str) -> Outcome | None:
    try:
        done = provider.status(idempotency_key=key)
    except (ProviderTimeout, ProviderError):
        return None  # not even that answers: keep trying
    return done or Outcome(succeeded=False, failure_reason=REASON_PROVIDER_UNAVAILABLE)


def _record(claimed: Payment, outcome: Outcome | None, why: str) -> Payment | None:
    phase = claimed.status
    with outbox.atomic():
        payment = _PAYMENT_FOR_UPDATE.get(claimed.pk)
        if payment is None or payment.status != phase:
            return payment  # another run recorded this phase first
        if outcome is None:
            payment.due_at = _retry_at(timezone.now(), payment.tries)
            payment.save(update_fields=["due_at", "updated_at"])
            logger.warning(
                "payment for order %s: no answer to %s try %s (%s); due again at %s",
                payment.order_id,
                "charge" if phase == Payment.Status.PENDING else "refund",
                payment.tries,
                why,
                payment.due_at.isoformat(),
            )
        elif phase == Payment.Status.PENDING:
            _record_charge(payment, outcome)
        else:
            _record_refund(payment, outcome)
        return payment


def _record_charge(payment: Payment, outcome: Outcome) -> None:
    payment.due_at = None
    if outcome.succeeded:
        payment.status = Payment.Status.CAPTURED
        payment.charge_reference = outcome.reference
        save_fields(payment, ["status", "charge_reference", "due_at", "updated_at"])
        outbox.publish(
            PaymentProcessed(
                order_id=payment.order_id,
                payment_id=payment.pk,
                amount=str(payment.amount),
                currency=payment.currency,
            )
        )
        if payment.refund_requested:
            # The order was cancelled while the charge was in flight: give it back.
            _refund_start(payment)
        return
    payment.status = Payment.Status.FAILED
    payment.failure_reason = outcome.failure_reason
    payment.save(update_fields=["status", "failure_reason", "due_at", "updated_at"])
    logger.info("payment for order %s failed: %s", payment.order_id, outcome.failure_reason)
    outbox.publish(
        PaymentFailed(
            order_id=payment.order_id,
            amount=str(payment.amount),
            reason=outcome.failure_reason,
        )
    )


def _record_refund(payment: Payment, outcome: Outcome) -> None:
    payment.due_at = None
    if outcome.succeeded:
        payment.status = Payment.Status.REFUNDED
        payment.refund_reference = outcome.reference
        payment.save(update_fields=["status", "refund_reference", "due_at", "updated_at"])
        outbox.publish(
            PaymentRefunded(
                order_id=payment.order_id, payment_id=payment.pk, amount=str(payment.amount)
            )
        )
        return
    payment.status = Payment.Status.REFUND_FAILED
    payment.failure_reason = outcome.failure_reason
    payment.save(update_fields=["status", "failure_reason", "due_at", "updated_at"])
    logger.error(
        "the provider refused to refund order %s's payment: %s",
        payment.order_id,
        outcome.failure_reason,
    )


# --- the beat's safety net ----------------------------------------------------------------


def payment_attempts_due(*, limit: int = 500) -> list[DueAttempt]:
    """Claim the open phases that are due (a lost message, a dead run, a retry) to send again.

    Pushes each one's due time on by ``PAYMENTS_RESEND_AFTER_S`` in the same
    transaction, so a slow queue does not get the same phase from every beat.
    The caller sends one ``run_attempt`` per returned attempt, after this commits.
    """
    now = timezone.now()
    with outbox.atomic():
        rows = list(
            Payment.objects.select_for_update(skip_locked=True)
            .filter(status__in=OPEN, due_at__lte=now)
            .order_by("due_at")
            .values_list("pk", "status", "tries")[:limit]
        )
        if rows:
            Payment.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
                due_at=_resend_at(now), updated_at=now
            )
    return [DueAttempt(payment_id=pk, status=status, tries=tries) for pk, status, tries in rows]
