"""The shop's own tables (its users are Django's)."""

import uuid

from django.db import models


class PaymentTokenReference(models.Model):
    """A payment token kept out of the event log: events carry only its reference.

    Orders stores the token here when an order is placed and publishes the
    reference; payments resolves it (``shop.vault``) when it charges. So the
    token is in no event payload and no order timeline, and no business app
    reads another's tables.
    """

    reference = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A token the payment provider understands (e.g. "tok_visa"); never card data.
    token = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"payment token reference {self.reference}"
