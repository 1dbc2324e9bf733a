"""Reads of notifications: personal, so every viewer (staff too) sees only their own."""

from __future__ import annotations

from django.db.models import QuerySet

from notifications.models import Notification
from shop.errors import NotFound
from shop.viewers import Viewer


def notification_list(*, viewer: Viewer) -> QuerySet[Notification]:
    """The viewer's own notifications, newest first."""
    return Notification.objects.filter(customer_id=viewer.user_id).order_by("-created_at", "-id")


def notification_get(*, viewer: Viewer, notification_id: int) -> Notification:
    """One of the viewer's notifications; ``NotFound`` for anyone else's."""
    notification = notification_list(viewer=viewer).filter(pk=notification_id).first()
    if notification is None:
        raise NotFound(f"Notification {notification_id} does not exist.")
    return notification
