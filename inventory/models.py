from django.db import models
from django.db.models import F, Q

SKU_MAX_LENGTH = 64


class Product(models.Model):
    """A sellable item and its stock.

    ``on_hand`` counts the units in the warehouse; ``reserved`` the part of them
    promised to orders that have not shipped yet. The constraints make
    overselling impossible even if a code path forgets to check.
    """

    sku = models.CharField(max_length=SKU_MAX_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=12, decimal_places=2)
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="inventory_product_price_gte_0"),
            models.CheckConstraint(
                condition=Q(on_hand__gte=0), name="inventory_product_on_hand_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="inventory_product_reserved_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("on_hand")),
                name="inventory_product_reserved_lte_on_hand",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class Reservation(models.Model):
    """The stock held for one order, or the record that it could not be held."""

    class Status(models.TextChoices):
        HELD = "HELD", "Held"
        RELEASED = "RELEASED", "Released"
        FULFILLED = "FULFILLED", "Fulfilled"
        FAILED = "FAILED", "Failed"

    order_id = models.BigIntegerField(unique=True)
    status = models.CharField(max_length=20, choices=Status.choices)
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["HELD", "RELEASED", "FULFILLED", "FAILED"]),
                name="inventory_reservation_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"reservation for order {self.order_id} ({self.status})"


class ReservationLine(models.Model):
    """One requested SKU of a reservation (kept for failed ones too, for the record)."""

    reservation = models.ForeignKey(Reservation, on_delete=models.CASCADE, related_name="lines")
    sku = models.CharField(max_length=64)
    quantity = models.IntegerField()

    class Meta:
        ordering = ["reservation_id", "sku"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="inventory_reservationline_quantity_gt_0"
            ),
            models.UniqueConstraint(
                fields=["reservation", "sku"], name="inventory_reservationline_sku_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
