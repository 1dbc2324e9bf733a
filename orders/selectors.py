"""Reads of orders' tables, scoped to who is reading."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from orders.models import Order, TimelineEntry
from shop.errors import NotFound
from shop.viewers import Viewer


def order_list(*, viewer: Viewer, status: str | None = None) -> QuerySet[Order]:
    """The orders the viewer may see (staff: every order), newest first, lines prefetched."""
    orders = Order.objects.prefetch_related("lines").order_by("-created_at", "-id")
    if viewer.customer_id is not None:
        orders = orders.filter(customer_id=viewer.customer_id)
    if status:
        orders = orders.filter(status=status)
    return orders


def order_get(*, order_id: int, viewer: Viewer) -> Order:
    """One order the viewer may see; raises ``NotFound`` for a missing or someone else's order."""
    order = order_list(viewer=viewer).filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def order_timeline(*, order_id: int) -> QuerySet[TimelineEntry]:
    """Everything that happened to an order, in commit order."""
    return TimelineEntry.objects.filter(order_id=order_id).order_by("sequence", "id")


def orders_past_deadline(*, now: datetime | None = None) -> QuerySet[Order]:
    """Orders still waiting (PENDING, CANCELLING) whose deadline has passed, oldest first."""
    return Order.objects.filter(deadline_at__lt=now or timezone.now()).order_by("deadline_at")


def deadline_report() -> dict[str, int]:
    """What ``outbox_status`` and the staff status endpoint add about orders (a status hook)."""
    return {"orders_past_deadline": orders_past_deadline().count()}
