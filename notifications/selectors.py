"""Reads of notifications: a customer sees only their own."""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import Notification
from shop.errors import NotFound


def notification_list(*, customer_id: int) -> QuerySet:
    """The customer's notifications, newest first."""
    return Notification.objects.filter(customer_id=customer_id).order_by("-created_at", "-id")


def notification_get(*, customer_id: int, notification_id: int) -> Notification:
    """One of the customer's notifications; ``NotFound`` for anyone else's."""
    notification = notification_list(customer_id=customer_id).filter(pk=notification_id).first()
    if notification is None:
        raise NotFound(f"Notification {notification_id} does not exist.")
    return notification
