from django.db import models
from django.db.models import Q


class Shipment(models.Model):
    """The shipment of one confirmed order. Lines are copied from the order's event."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        DISPATCHED = "DISPATCHED", "Dispatched"
        CANCELLED = "CANCELLED", "Cancelled"

    order_id = models.BigIntegerField(unique=True)
    customer_id = models.BigIntegerField(db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Empty until dispatched; unique among the non-empty ones.
    tracking_number = models.CharField(max_length=32, blank=True, default="")
    lines = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "DISPATCHED", "CANCELLED"]),
                name="shipping_shipment_status_valid",
            ),
            models.UniqueConstraint(
                fields=["tracking_number"],
                condition=~Q(tracking_number=""),
                name="shipping_shipment_tracking_number_unique",
            ),
            # A dispatched shipment, and only a dispatched one, has a tracking
            # number and a dispatch time.
            models.CheckConstraint(
                condition=(
                    Q(status="DISPATCHED", dispatched_at__isnull=False) & ~Q(tracking_number="")
                )
                | (~Q(status="DISPATCHED") & Q(dispatched_at__isnull=True, tracking_number="")),
                name="shipping_shipment_dispatch_fields",
            ),
        ]

    def __str__(self) -> str:
        return f"Shipment #{self.pk} for order #{self.order_id} ({self.status})"
