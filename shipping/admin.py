from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from shipping import services
from shipping.models import Shipment
from shop.admin import ReadOnlyAdmin
from shop.errors import DomainError


@admin.register(Shipment)
class ShipmentAdmin(ReadOnlyAdmin):
    """Shipments change only through services: the admin lists them and dispatches."""

    list_display = [
        "id",
        "order_id",
        "customer_id",
        "status",
        "tracking_number",
        "created_at",
        "dispatched_at",
    ]
    list_filter = ["status", "created_at", "dispatched_at"]
    search_fields = ["=id", "=order_id", "=customer_id", "tracking_number"]
    ordering = ["-created_at", "-id"]
    readonly_fields = [
        "order_id",
        "customer_id",
        "status",
        "tracking_number",
        "lines",
        "created_at",
        "updated_at",
        "dispatched_at",
    ]
    actions = ["dispatch_selected"]

    def has_dispatch_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("shipping.change_shipment")

    @admin.action(description="Dispatch selected shipments", permissions=["dispatch"])
    def dispatch_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        for shipment_id in queryset.order_by("id").values_list("id", flat=True):
            try:
                shipment = services.shipment_dispatch(shipment_id=shipment_id)
            except DomainError as exc:
                self.message_user(request, exc.message, level=messages.WARNING)
            else:
                self.message_user(
                    request,
                    f"Shipment {shipment.pk} (order {shipment.order_id}) dispatched "
                    f"with tracking number {shipment.tracking_number}.",
                    level=messages.SUCCESS,
                )
