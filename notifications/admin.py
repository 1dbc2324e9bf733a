from django.contrib import admin
from django.http import HttpRequest

from notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Notification | None = None) -> bool:
        return False
