from django.db import models
from django.db.models import Q


class Payment(models.Model):
    """The charge for one order at the gateway, and what became of it.

    Only the gateway's reference is kept: no card data ever reaches this table.
    """

    class Status(models.TextChoices):
        CAPTURED = "CAPTURED", "Captured"
        FAILED = "FAILED", "Failed"
        REFUNDED = "REFUNDED", "Refunded"

    order_id = models.BigIntegerField(unique=True)
    customer_id = models.BigIntegerField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=20, choices=Status.choices)
    gateway_reference = models.CharField(max_length=100, blank=True, default="")
    refund_reference = models.CharField(max_length=100, blank=True, default="")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="payments_payment_amount_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["CAPTURED", "FAILED", "REFUNDED"]),
                name="payments_payment_status_valid",
            ),
            # Money moved only with a charge at the gateway to show for it.
            models.CheckConstraint(
                condition=Q(status="FAILED") | ~Q(gateway_reference=""),
                name="payments_payment_captured_has_reference",
            ),
            models.CheckConstraint(
                condition=~Q(status="REFUNDED") | ~Q(refund_reference=""),
                name="payments_payment_refunded_has_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"payment for order {self.order_id}: {self.amount} {self.currency} {self.status}"
