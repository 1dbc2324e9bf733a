"""Orders' Prometheus metrics: how long the saga takes, from placement to each end state."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from prometheus_client import Histogram

from orders.models import Order

SAGA_SECONDS = Histogram(
    "shop_saga_duration_seconds",
    "From an order's placement to its outcome: confirmed (stock and payment done), "
    "shipped (dispatched, staff's delay included) or cancelled, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0),
)
OUTCOMES: dict[str, str] = {
    Order.Status.CONFIRMED: "confirmed",
    Order.Status.SHIPPED: "shipped",
    Order.Status.CANCELLED: "cancelled",
}


def saga_reached_on_commit(order: Order) -> None:
    """Observe the order's saga duration once the transaction that moved it commits."""
    outcome = OUTCOMES.get(order.status)
    if outcome is None or order.created_at is None:
        return
    placed = order.created_at

    def observe() -> None:
        SAGA_SECONDS.labels(outcome).observe(max((timezone.now() - placed).total_seconds(), 0.0))

    transaction.on_commit(observe)
