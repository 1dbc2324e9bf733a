"""Test data for orders, made the way production makes it: through handlers and services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from orders import services
from orders.models import IdempotencyKey, Order
from outbox.models import OutboxEvent
from outbox.testing import deliver


def seed_product(sku: str = "SKU-1", *, name: str = "Widget", price: str = "10.00") -> None:
    """Put a product in the catalogue replica by delivering inventory.ProductChanged."""
    deliver(
        "orders",
        "inventory.ProductChanged",
        {"sku": sku, "name": name, "price": price},
        aggregate_type="product",
        aggregate_id=sku,
    )


def place(
    customer_id: int = 7,
    lines: list[tuple[str, int]] | None = None,
    **kwargs: Any,
) -> Order:
    lines = lines if lines is not None else [("SKU-1", 2)]
    placed = services.order_place(
        customer_id=customer_id,
        lines=[services.LineIn(sku=sku, quantity=quantity) for sku, quantity in lines],
        **kwargs,
    )
    return placed.order


def age_idempotency_key(customer_id: int, key: str, *, hours: float) -> None:
    """Make a customer's key ``hours`` old, as if its first request came that long ago."""
    IdempotencyKey.objects.filter(customer_id=customer_id, key=key).update(
        created_at=timezone.now() - timedelta(hours=hours)
    )


def order_events(order_id: int) -> list[tuple[str, dict]]:
    """(event_type, payload) of everything orders published for one order, in order."""
    return [
        (row.event_type, row.payload)
        for row in OutboxEvent.objects.filter(
            aggregate_type="order", aggregate_id=str(order_id)
        ).order_by("id")
    ]


def stock_reserved(order: Order, **kwargs: Any) -> bool:
    return deliver(
        "orders",
        "inventory.StockReserved",
        {
            "order_id": order.pk,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in order.lines.all()],
        },
        aggregate_type="reservation",
        aggregate_id=order.pk,
        **kwargs,
    )


def stock_failed(order: Order, **kwargs: Any) -> bool:
    return deliver(
        "orders",
        "inventory.StockReservationFailed",
        {
            "order_id": order.pk,
            "reason": "insufficient stock",
            "unavailable": [{"sku": "SKU-1", "requested": 2, "available": 1}],
        },
        aggregate_type="reservation",
        aggregate_id=order.pk,
        **kwargs,
    )


def payment_processed(order: Order, **kwargs: Any) -> bool:
    return deliver(
        "orders",
        "payments.PaymentProcessed",
        {
            "order_id": order.pk,
            "payment_id": 900 + order.pk,
            "amount": str(order.total),
            "currency": "EUR",
        },
        aggregate_type="payment",
        aggregate_id=order.pk,
        **kwargs,
    )


def payment_failed(order: Order, **kwargs: Any) -> bool:
    return deliver(
        "orders",
        "payments.PaymentFailed",
        {"order_id": order.pk, "amount": str(order.total), "reason": "card declined"},
        aggregate_type="payment",
        aggregate_id=order.pk,
        **kwargs,
    )


def order_shipped(order: Order, **kwargs: Any) -> bool:
    return deliver(
        "orders",
        "shipping.OrderShipped",
        {
            "shipment_id": 500 + order.pk,
            "order_id": order.pk,
            "customer_id": order.customer_id,
            "tracking_number": f"TRACK-{order.pk}",
        },
        aggregate_type="shipment",
        aggregate_id=500 + order.pk,
        **kwargs,
    )


def shipment_cancelled(order: Order, **kwargs: Any) -> bool:
    """Shipping's answer to a cancel request: the shipment was cancelled."""
    return deliver(
        "orders",
        "shipping.ShipmentCancelled",
        {"shipment_id": 500 + order.pk, "order_id": order.pk},
        aggregate_type="shipment",
        aggregate_id=500 + order.pk,
        **kwargs,
    )


def cancellation_refused(order: Order, reason: str = "dispatched", **kwargs: Any) -> bool:
    """Shipping's other answer: "dispatched" or "expired"."""
    return deliver(
        "orders",
        "shipping.ShipmentCancellationRefused",
        {
            "shipment_id": 500 + order.pk,
            "order_id": order.pk,
            "customer_id": order.customer_id,
            "reason": reason,
            "tracking_number": f"TRACK-{order.pk}" if reason == "dispatched" else "",
        },
        aggregate_type="shipment",
        aggregate_id=500 + order.pk,
        **kwargs,
    )


def confirm(order: Order) -> Order:
    """Both saga replies: the order is CONFIRMED."""
    stock_reserved(order)
    payment_processed(order)
    order.refresh_from_db()
    return order


def timeline_project(order: Order, foreign: dict[str, tuple[str, int, dict]]) -> None:
    """Project the order's own events (from the log) and ``foreign`` ones into its timeline.

    ``foreign`` maps another app's event type to (aggregate_type, aggregate_id, payload).
    """
    for event_type, payload in order_events(order.pk):
        deliver(
            "orders-timeline",
            event_type,
            payload,
            aggregate_type="order",
            aggregate_id=order.pk,
            version=2 if event_type == "orders.OrderCancelled" else 1,
        )
    for event_type, (aggregate_type, aggregate_id, payload) in foreign.items():
        deliver(
            "orders-timeline",
            event_type,
            payload,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
        )
