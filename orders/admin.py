"""Admin for orders: everything is read-only history; changes go through the services."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from orders import saga, selectors, services
from orders.models import CatalogueItem, IdempotencyKey, Order, OrderLine, TimelineEntry
from shop.admin import ReadOnlyAdmin, ReadOnlyInline
from shop.errors import DomainError


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    readonly_fields = ["sku", "name", "unit_price", "quantity"]
    fields = tuple(readonly_fields)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer_id",
        "status",
        "total",
        "currency",
        "stock_reserved",
        "payment_captured",
        "cancel_reason_code",
        "created_at",
    ]
    list_filter = ["status", "cancel_reason_code", "created_at"]
    search_fields = ["=id", "=customer_id"]
    date_hierarchy = "created_at"
    inlines = [OrderLineInline]
    readonly_fields = [
        "id",
        "customer_id",
        "status",
        "total",
        "currency",
        "payment_reference",
        "stock_reserved",
        "payment_captured",
        "cancel_reason_code",
        "cancel_reason",
        "deadline_at",
        "created_at",
        "updated_at",
        "saga",
        "timeline",
    ]
    fields = tuple(readonly_fields)
    actions = ["cancel_selected_orders"]

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        # The page itself is read-only; cancelling goes through the service.
        return request.user.has_perm("orders.change_order")

    @admin.display(description="saga")
    def saga(self, order: Order) -> SafeString:
        steps = saga.saga_steps(order, selectors.order_timeline(order_id=order.pk))
        # render_svg escapes every text it draws.
        return mark_safe(saga.render_svg(order, steps))  # noqa: S308

    @admin.display(description="timeline")
    def timeline(self, order: Order) -> str:
        entries = selectors.order_timeline(order_id=order.pk)
        if not entries:
            return "No events yet."
        # Each entry links to its event's lifecycle page (the outbox's admin, by URL name).
        rows = format_html_join(
            "",
            '<tr class="timeline-entry"><td>{}</td><td><a href="{}">{}</a></td>'
            '<td><code style="white-space: pre-wrap">{}</code></td></tr>',
            (
                (
                    entry.occurred_at.isoformat(timespec="milliseconds"),
                    reverse("admin:outbox_event_lifecycle", args=[entry.event_id]),
                    entry.event_type,
                    ", ".join(f"{key}: {json.dumps(value)}" for key, value in entry.data.items()),
                )
                for entry in entries
            ),
        )
        return format_html(
            '<table class="timeline"><thead><tr><th>occurred at</th><th>event (its lifecycle)'
            "</th><th>data</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Cancel selected orders", permissions=["cancel"])
    def cancel_selected_orders(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        cancelled, asked, refused = 0, 0, []
        for order_id in queryset.order_by("pk").values_list("pk", flat=True):
            try:
                order = services.order_cancel(
                    order_id=order_id, reason=services.STAFF_CANCEL_REASON
                )
            except DomainError as exc:
                refused.append(f"#{order_id}: {exc.message}")
            else:
                if order.status == Order.Status.CANCELLING:
                    asked += 1
                else:
                    cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} order(s).", messages.SUCCESS)
        if asked:
            self.message_user(
                request,
                f"Asked shipping to cancel the shipment of {asked} confirmed order(s): they "
                "are CANCELLING until it answers.",
                messages.SUCCESS,
            )
        if refused:
            self.message_user(request, f"Not cancelled: {'; '.join(refused)}", messages.WARNING)


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdmin):
    list_display = ["id", "order", "sku", "name", "unit_price", "quantity"]
    list_filter = ["sku"]
    search_fields = ["sku", "name", "=order__id"]
    list_select_related = ["order"]


@admin.register(CatalogueItem)
class CatalogueItemAdmin(ReadOnlyAdmin):
    list_display = ["sku", "name", "price", "updated_at"]
    search_fields = ["sku", "name"]
    ordering = ["sku"]


@admin.register(TimelineEntry)
class TimelineEntryAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "order_id", "event_type", "occurred_at", "event_id"]
    list_filter = ["event_type"]
    search_fields = ["=order_id", "=event_id"]
    ordering = ["-sequence", "-id"]


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ["key", "customer_id", "order", "created_at"]
    search_fields = ["key", "=customer_id", "=order__id"]
    list_select_related = ["order"]
