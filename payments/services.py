"""Charging orders and refunding them, each with the events it publishes."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

import outbox
from payments import gateway
from payments.events import PaymentFailed, PaymentProcessed, PaymentRefunded
from payments.models import Payment
from shop.errors import DomainError

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")


class GatewayError(Exception):
    """The gateway refused an operation that should have succeeded (retried, then dead-lettered)."""


def _amount(value: Decimal | str) -> Decimal:
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise DomainError(f"{value!r} is not an amount.", field="amount") from None
    if not amount.is_finite() or amount < 0:
        raise DomainError(f"{value!r} is not an amount.", field="amount")
    return amount.quantize(CENT)


def payment_charge_for_order(
    *,
    order_id: int,
    customer_id: int,
    amount: Decimal | str,
    currency: str,
    payment_token: str,
) -> Payment:
    """Charge an order's amount at the gateway, once per order.

    On success the payment is CAPTURED and ``payments.PaymentProcessed`` is
    published; when the gateway refuses, the payment is recorded as FAILED with
    the reason and ``payments.PaymentFailed`` is published. A second call for
    an order that has a payment (of any status) returns it and charges nothing.
    The gateway is given the order as idempotency key, so even a charge repeated
    by a concurrent delivery names the same charge. Raises ``DomainError`` for a
    negative or malformed amount or a currency that is not a 3-letter code.
    """
    amount = _amount(amount)
    if len(currency) != 3 or not currency.isalpha():
        raise DomainError(f"{currency!r} is not a currency code.", field="currency")
    currency = currency.upper()
    with transaction.atomic():
        existing = Payment.objects.filter(order_id=order_id).first()
        if existing is not None:
            logger.info("order %s already has a %s payment", order_id, existing.status)
            return existing
        result = gateway.charge(payment_token, amount, idempotency_key=f"order-{order_id}")
        status = Payment.Status.CAPTURED if result.succeeded else Payment.Status.FAILED
        try:
            # A savepoint: a concurrent delivery for the same order loses here, cleanly.
            with transaction.atomic():
                payment = Payment.objects.create(
                    order_id=order_id,
                    customer_id=customer_id,
                    amount=amount,
                    currency=currency,
                    status=status,
                    gateway_reference=result.reference,
                    failure_reason=result.failure_reason,
                )
        except IntegrityError:
            existing = Payment.objects.filter(order_id=order_id).first()
            if existing is None:
                raise
            logger.info("order %s was charged concurrently", order_id)
            return existing
        if result.succeeded:
            outbox.publish(
                PaymentProcessed(
                    order_id=order_id, payment_id=payment.pk, amount=str(amount), currency=currency
                )
            )
        else:
            logger.info("payment for order %s failed: %s", order_id, result.failure_reason)
            outbox.publish(
                PaymentFailed(order_id=order_id, amount=str(amount), reason=result.failure_reason)
            )
    return payment


def payment_refund_for_order(*, order_id: int) -> Payment | None:
    """Refund an order's captured payment in full (CAPTURED → REFUNDED).

    Publishes ``payments.PaymentRefunded``. Does nothing (and returns what there
    is) when the order has no payment or it is not CAPTURED, so a payment that
    failed or was refunded already is left alone. Raises ``GatewayError`` if the
    gateway refuses the refund; nothing changes then.
    """
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(order_id=order_id).first()
        if payment is None:
            logger.info("no payment for order %s to refund: ignored", order_id)
            return None
        if payment.status != Payment.Status.CAPTURED:
            logger.info(
                "payment for order %s is %s, not CAPTURED: refund ignored", order_id, payment.status
            )
            return payment
        result = gateway.refund(payment.gateway_reference)
        if not result.succeeded:
            raise GatewayError(
                f"refund of order {order_id}'s payment failed: {result.failure_reason}"
            )
        payment.status = Payment.Status.REFUNDED
        payment.refund_reference = result.reference
        payment.save(update_fields=["status", "refund_reference", "updated_at"])
        outbox.publish(
            PaymentRefunded(order_id=order_id, payment_id=payment.pk, amount=str(payment.amount))
        )
    return payment
