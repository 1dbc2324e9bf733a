"""Reads of payments, scoped to who is asking."""

from django.db.models import QuerySet

from payments.models import Payment
from shop.errors import NotFound
from shop.viewers import Viewer


def payment_list(*, viewer: Viewer, order_id: int | None = None) -> QuerySet[Payment]:
    """A customer's own payments, or everyone's for staff; optionally of one order."""
    payments = Payment.objects.order_by("-created_at", "-id")
    if viewer.customer_id is not None:
        payments = payments.filter(customer_id=viewer.customer_id)
    if order_id is not None:
        payments = payments.filter(order_id=order_id)
    return payments


def payment_get(*, payment_id: int, viewer: Viewer) -> Payment:
    """One payment the viewer may see; raises ``NotFound`` otherwise (never revealing it exists)."""
    payment = payment_list(viewer=viewer).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound("No such payment.")
    return payment
