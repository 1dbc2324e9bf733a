import uuid

from django.db import models
from django.db.models import Q


class Payment(models.Model):
    """The charge for one order at the provider, its refund, and what became of them.

    Each money movement runs in phases: the intent is recorded here (PENDING,
    REFUNDING) in one transaction, the provider is called outside any with the
    phase's idempotency key, and its answer is recorded in a new transaction.
    ``tries`` counts the provider calls of the open phase, ``due_at`` says when
    the beat sends the phase again if it is still open then.

    Only the provider's token and references are kept: no card data ever
    reaches this table.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Charge asked for"
        CAPTURED = "CAPTURED", "Captured"
        FAILED = "FAILED", "Failed"
        REFUNDING = "REFUNDING", "Refund asked for"
        REFUNDED = "REFUNDED", "Refunded"
        REFUND_FAILED = "REFUND_FAILED", "Refund refused"

    order_id = models.BigIntegerField(unique=True)
    customer_id = models.BigIntegerField(db_index=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    # The provider's token for the card (e.g. "tok_visa"); never card data.
    payment_token = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices)
    charge_key = models.UUIDField(unique=True, default=uuid.uuid4)
    refund_key = models.UUIDField(unique=True, null=True, blank=True)
    charge_reference = models.CharField(max_length=100, blank=True, default="")
    refund_reference = models.CharField(max_length=100, blank=True, default="")
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # The order was cancelled while the charge was in flight: refund it once captured.
    refund_requested = models.BooleanField(default=False)
    tries = models.PositiveIntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="payments_payment_amount_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "PENDING",
                        "CAPTURED",
                        "FAILED",
                        "REFUNDING",
                        "REFUNDED",
                        "REFUND_FAILED",
                    ]
                ),
                name="payments_payment_status_valid",
            ),
            # Money moved only with a charge at the provider to show for it.
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "FAILED"]) | ~Q(charge_reference=""),
                name="payments_payment_captured_has_reference",
            ),
            models.CheckConstraint(
                condition=~Q(status="REFUNDED") | ~Q(refund_reference=""),
                name="payments_payment_refunded_has_reference",
            ),
            # A refund, and only a refund, has its own idempotency key.
            models.CheckConstraint(
                condition=Q(
                    status__in=["REFUNDING", "REFUNDED", "REFUND_FAILED"],
                    refund_key__isnull=False,
                )
                | (
                    ~Q(status__in=["REFUNDING", "REFUNDED", "REFUND_FAILED"])
                    & Q(refund_key__isnull=True)
                ),
                name="payments_payment_refund_key_iff_refund",
            ),
            # An open phase, and only an open one, is due again at some point.
            models.CheckConstraint(
                condition=Q(status__in=["PENDING", "REFUNDING"], due_at__isnull=False)
                | (~Q(status__in=["PENDING", "REFUNDING"]) & Q(due_at__isnull=True)),
                name="payments_payment_due_iff_open",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=Q(due_at__isnull=False),
                name="payments_payment_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"payment for order {self.order_id}: {self.amount} {self.currency} {self.status}"


class SimulatedProviderOperation(models.Model):
    """The simulated provider's own ledger: one row per idempotency key it was called with.

    It stands for the books of a remote provider. Only ``payments.simulated``
    writes it, in its own committed transactions, and payments' code never
    reads it: what a charge came to is asked of the provider (``status``).
    Tests read it to count what really moved.
    """

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"

    class Status(models.TextChoices):
        NOT_DONE = "not_done", "Not done"
        SUCCEEDED = "succeeded", "Succeeded"
        REFUSED = "refused", "Refused"

    idempotency_key = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    token = models.CharField(max_length=100, blank=True, default="")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, blank=True, default="")
    # For a refund: the charge it gives back.
    charge_reference = models.CharField(max_length=100, blank=True, default="", db_index=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.NOT_DONE)
    reference = models.CharField(max_length=100, blank=True, default="", db_index=True)
    failure_reason = models.CharField(max_length=500, blank=True, default="")
    # How many times the key was called (a retry with the same key counts, moves nothing).
    calls = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "simulated provider operation"

    def __str__(self) -> str:
        return f"{self.kind} {self.idempotency_key}: {self.status}"
