"""Payments in a given state, for tests of what reads them (API, admin)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.utils import timezone

from payments.models import Payment


def payment_row(
    order_id: int,
    customer_id: int,
    *,
    status: str = Payment.Status.CAPTURED,
    amount: str = "10.00",
    failure_reason: str = "",
) -> Payment:
    """A payment as the phases leave it in ``status`` (references and keys included)."""
    refunding = status in (
        Payment.Status.REFUNDING,
        Payment.Status.REFUNDED,
        Payment.Status.REFUND_FAILED,
    )
    charged = status not in (Payment.Status.PENDING, Payment.Status.FAILED)
    return Payment.objects.create(
        order_id=order_id,
        customer_id=customer_id,
        amount=Decimal(amount),
        currency="EUR",
        payment_token="tok_visa",
        status=status,
        charge_reference=f"ch_{order_id:024d}" if charged else "",
        refund_key=uuid.uuid4() if refunding else None,
        refund_reference=f"re_{order_id:024d}" if status == Payment.Status.REFUNDED else "",
        failure_reason=failure_reason,
        due_at=timezone.now()
        if status in (Payment.Status.PENDING, Payment.Status.REFUNDING)
        else None,
    )
