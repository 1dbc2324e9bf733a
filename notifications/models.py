from django.db import models


class Notification(models.Model):
    """A message sent (or meant) to a customer: the record they can list.

    ``event_id`` is the event that caused it, so a redelivered event cannot notify
    twice; and each order gets at most one notification of each kind, each
    customer one welcome, so neither can a second event telling the same news.
    """

    class Kind(models.TextChoices):
        WELCOME = "welcome", "Welcome"
        ORDER_CREATED = "order_created", "Order created"
        ORDER_CONFIRMED = "order_confirmed", "Order confirmed"
        ORDER_CANCELLED = "order_cancelled", "Order cancelled"
        ORDER_SHIPPED = "order_shipped", "Order shipped"
        CANCELLATION_REFUSED = "cancellation_refused", "Cancellation refused"

    customer_id = models.BigIntegerField(db_index=True)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    order_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    event_id = models.UUIDField(unique=True)
    # Set once the email backend has taken the message (after the record committed).
    email_sent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "welcome",
                        "order_created",
                        "order_confirmed",
                        "order_cancelled",
                        "order_shipped",
                        "cancellation_refused",
                    ]
                ),
                name="notifications_notification_kind_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="welcome", order_id__isnull=True)
                | (~models.Q(kind="welcome") & models.Q(order_id__isnull=False)),
                name="notifications_notification_order_kinds_have_order",
            ),
            models.UniqueConstraint(
                fields=["order_id", "kind"],
                condition=models.Q(order_id__isnull=False),
                name="notifications_notification_one_per_order_and_kind",
            ),
            models.UniqueConstraint(
                fields=["customer_id"],
                condition=models.Q(kind="welcome"),
                name="notifications_notification_one_welcome",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to customer {self.customer_id}: {self.subject}"
