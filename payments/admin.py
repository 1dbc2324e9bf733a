"""Payments are history: read-only, but staff can refund captured ones through the service."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from payments import services
from payments.models import Payment
from shop.admin import ReadOnlyAdmin


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "order_id",
        "customer_id",
        "amount",
        "currency",
        "status",
        "failure_reason",
        "created_at",
    ]
    list_filter = ["status", "currency", "created_at"]
    search_fields = ["=order_id", "=customer_id", "gateway_reference"]
    readonly_fields = [
        "order_id",
        "customer_id",
        "amount",
        "currency",
        "status",
        "gateway_reference",
        "refund_reference",
        "failure_reason",
        "created_at",
        "updated_at",
    ]
    date_hierarchy = "created_at"
    actions = ["refund_selected"]

    def has_refund_permission(self, request: HttpRequest) -> bool:
        # Changes are refused in the form (history), but refunding is a change all the same.
        return request.user.has_perm("payments.change_payment")

    @admin.action(description="Refund selected payments", permissions=["refund"])
    def refund_selected(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        refunded, skipped = [], []
        for order_id, status in queryset.order_by("order_id").values_list("order_id", "status"):
            if status != Payment.Status.CAPTURED:
                skipped.append(order_id)
                continue
            try:
                services.payment_refund_for_order(order_id=order_id)
            except services.GatewayError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            refunded.append(order_id)
        if refunded:
            self.message_user(
                request,
                f"Refunded the payments of order(s) {', '.join(map(str, refunded))}.",
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"Not captured, so not refunded: order(s) {', '.join(map(str, skipped))}.",
                messages.WARNING,
            )
