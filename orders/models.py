"""Orders, their lines, the catalogue replica, idempotency keys and the timeline read model.

Models stay thin: every change goes through ``orders.services``.
"""

from django.db import models
from django.db.models import Q


class Order(models.Model):
    """A customer's order, moved through its states by the saga (see ``orders.states``)."""

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending"
        CONFIRMED = "CONFIRMED", "Confirmed"
        # A cancel was asked of a confirmed order; shipping has not answered yet.
        CANCELLING = "CANCELLING", "Cancelling"
        SHIPPED = "SHIPPED", "Shipped"
        CANCELLED = "CANCELLED", "Cancelled"

    class CancelReasonCode(models.TextChoices):
        OUT_OF_STOCK = "out_of_stock", "Out of stock"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        CUSTOMER_REQUEST = "customer_request", "Customer request"
        TIMEOUT = "timeout", "No answer in time"

    # The id of a django.contrib.auth user; no foreign key leaves the app.
    customer_id = models.BigIntegerField(db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    total = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    # The payment token's reference (shop.vault): the token itself is kept out of orders.
    payment_reference = models.CharField(max_length=64, blank=True, default="")
    cancel_reason = models.TextField(blank=True, default="")
    cancel_reason_code = models.CharField(
        max_length=30, choices=CancelReasonCode.choices, blank=True, default=""
    )
    # The two saga replies an order waits for before it is confirmed.
    stock_reserved = models.BooleanField(default=False)
    payment_captured = models.BooleanField(default=False)
    # While the saga waits (PENDING, CANCELLING): when it stops waiting (see orders.tasks).
    deadline_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["PENDING", "CONFIRMED", "CANCELLING", "SHIPPED", "CANCELLED"]
                ),
                name="orders_order_status_valid",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="orders_order_total_gte_0"),
            # A cancelled (or cancelling) order always says why; any other order never does.
            models.CheckConstraint(
                condition=(Q(status__in=["CANCELLING", "CANCELLED"]) & ~Q(cancel_reason_code=""))
                | (~Q(status__in=["CANCELLING", "CANCELLED"]) & Q(cancel_reason_code="")),
                name="orders_order_cancel_reason_code_iff_cancelled",
            ),
            # The states that wait for another app, and only those, have a deadline.
            models.CheckConstraint(
                condition=(Q(status__in=["PENDING", "CANCELLING"]) & Q(deadline_at__isnull=False))
                | (~Q(status__in=["PENDING", "CANCELLING"]) & Q(deadline_at__isnull=True)),
                name="orders_order_deadline_iff_waiting",
            ),
        ]
        indexes = [
            models.Index(
                fields=["deadline_at"],
                condition=Q(deadline_at__isnull=False),
                name="orders_order_deadline_idx",
            )
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk} ({self.status})"


class OrderLine(models.Model):
    """One product of an order, priced from the catalogue replica when the order was placed."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orders_line_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="orders_line_unit_price_gte_0"
            ),
            models.UniqueConstraint(fields=["order", "sku"], name="orders_line_order_sku_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class CatalogueItem(models.Model):
    """Orders' own replica of the product catalogue, fed only by ``inventory.ProductChanged``."""

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="orders_catalogue_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class IdempotencyKey(models.Model):
    """That a customer's ``Idempotency-Key`` placed an order, with a hash of the request body."""

    customer_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="idempotency_keys")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer_id", "key"], name="orders_idempotency_customer_key_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}:{self.key} -> order #{self.order_id}"


class TimelineEntry(models.Model):
    """The timeline read model: one row per event that concerns an order.

    Built only from events (``orders.services.timeline_apply``), so it can be
    deleted and rebuilt from the event log (``manage.py timeline_rebuild``).
    ``order_id`` is deliberately not a foreign key: the timeline depends on the
    log alone.
    """

    order_id = models.BigIntegerField()
    event_id = models.UUIDField(unique=True)
    event_type = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    # The event's position in the global log: commit order.
    sequence = models.BigIntegerField()
    data = models.JSONField(default=dict)

    class Meta:
        verbose_name_plural = "timeline entries"
        ordering = ["sequence", "id"]
        indexes = [models.Index(fields=["order_id", "sequence"])]

    def __str__(self) -> str:
        return f"order #{self.order_id}: {self.event_type}"
