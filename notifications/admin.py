from django.contrib import admin

from notifications.models import Notification
from shop.admin import ReadOnlyAdmin


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    """Sent notifications are history: readable, never edited."""

    list_display = [
        "id",
        "created_at",
        "kind",
        "customer_id",
        "order_id",
        "subject",
        "email_sent",
    ]
    list_filter = ["kind", "email_sent", "created_at"]
    search_fields = ["subject", "=customer_id", "=order_id"]
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "customer_id",
        "kind",
        "subject",
        "body",
        "order_id",
        "event_id",
        "email_sent",
        "created_at",
    ]
