"""Payments are history: read-only, but staff can ask for captured ones to be refunded."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from payments import services
from payments.models import Payment, SimulatedProviderOperation
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
        "tries",
        "failure_reason",
        "created_at",
    ]
    list_filter = ["status", "currency", "created_at"]
    search_fields = ["=order_id", "=customer_id", "charge_reference", "=charge_key"]
    readonly_fields = [
        "order_id",
        "customer_id",
        "amount",
        "currency",
        "payment_token",
        "status",
        "charge_key",
        "charge_reference",
        "refund_key",
        "refund_reference",
        "refund_requested",
        "failure_reason",
        "tries",
        "due_at",
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
            services.payment_refund_for_order(order_id=order_id)
            refunded.append(order_id)
        if refunded:
            self.message_user(
                request,
                f"Refund asked for the payments of order(s) {', '.join(map(str, refunded))}.",
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"Not captured, so not refunded: order(s) {', '.join(map(str, skipped))}.",
                messages.WARNING,
            )


@admin.register(SimulatedProviderOperation)
class SimulatedProviderOperationAdmin(ReadOnlyAdmin):
    """The simulated provider's ledger: what it was asked and what it did."""

    list_display = [
        "id",
        "kind",
        "idempotency_key",
        "token",
        "amount",
        "status",
        "reference",
        "calls",
        "created_at",
    ]
    list_filter = ["kind", "status", "token"]
    search_fields = ["=idempotency_key", "reference", "charge_reference"]
