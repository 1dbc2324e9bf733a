"""What orders reacts to.

Two consumer groups:

- ``orders`` moves orders through the saga and keeps the catalogue replica.
  An event that does not fit the order's state (``Conflict``) is ignored with
  a log line: it is a late or repeated reply, not a fault worth retrying.
- ``orders-timeline`` projects every event that concerns an order into the
  timeline read model. It is a separate group so the projection keeps its own
  position in the log and can be rebuilt without touching the saga.
"""

from __future__ import annotations

import logging

from orders import services
from outbox import ConsumerGroup, Message
from shop.errors import Conflict

logger = logging.getLogger(__name__)

consumer = ConsumerGroup("orders")
# A read model nobody waits for: it gathers entries for up to 50 ms between reads
# while busy, so one commit applies several.
timeline = ConsumerGroup("orders-timeline", linger_ms=50)


def _ignored(message: Message, exc: Conflict) -> None:
    logger.info(
        "orders ignored %s %s for order %s: %s",
        message.type,
        message.event_id,
        message.payload.get("order_id"),
        exc.message,
    )


@consumer.handler("inventory.StockReserved")
def on_stock_reserved(message: Message) -> None:
    try:
        services.order_record_stock_result(order_id=message.payload["order_id"], reserved=True)
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("inventory.StockReservationFailed")
def on_stock_reservation_failed(message: Message) -> None:
    payload = message.payload
    try:
        services.order_record_stock_result(
            order_id=payload["order_id"],
            reserved=False,
            reason=_out_of_stock_reason(payload),
        )
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("payments.PaymentProcessed")
def on_payment_processed(message: Message) -> None:
    try:
        services.order_record_payment_result(order_id=message.payload["order_id"], captured=True)
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("payments.PaymentFailed")
def on_payment_failed(message: Message) -> None:
    payload = message.payload
    reason = str(payload.get("reason") or "declined").rstrip(".")
    try:
        services.order_record_payment_result(
            order_id=payload["order_id"], captured=False, reason=f"Payment failed: {reason}."
        )
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("shipping.OrderShipped")
def on_order_shipped(message: Message) -> None:
    try:
        services.order_mark_shipped(order_id=message.payload["order_id"])
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("shipping.ShipmentCancelled")
def on_shipment_cancelled(message: Message) -> None:
    try:
        services.order_record_shipment_cancelled(order_id=message.payload["order_id"])
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("shipping.ShipmentCancellationRefused")
def on_shipment_cancellation_refused(message: Message) -> None:
    try:
        services.order_record_cancellation_refused(
            order_id=message.payload["order_id"], reason=message.payload["reason"]
        )
    except Conflict as exc:
        _ignored(message, exc)


@consumer.handler("inventory.ProductChanged")
def on_product_changed(message: Message) -> None:
    payload = message.payload
    services.catalogue_upsert(sku=payload["sku"], name=payload["name"], price=payload["price"])


def _out_of_stock_reason(payload: dict) -> str:
    """Human text for the customer: which products were short, and by how much."""
    short = [
        f"{item['sku']} (requested {item['requested']}, available {item['available']})"
        for item in payload.get("unavailable") or []
    ]
    if short:
        return f"Out of stock: {', '.join(short)}."
    reason = str(payload.get("reason") or "not enough stock").rstrip(".")
    return f"Out of stock: {reason}."


# --- the timeline projection: every event that concerns an order ------------------------


# What the projection is built from, with the version it takes (older ones are
# upcast to it); ``timeline_rebuild`` reads the log for these.
TIMELINE_EVENTS: dict[str, int] = {
    "orders.OrderCreated": 2,
    "orders.OrderConfirmed": 1,
    "orders.OrderCancelled": 2,
    "orders.OrderCancellationRequested": 1,
    "orders.OrderCancellationRefused": 1,
    "inventory.StockReserved": 1,
    "inventory.StockReservationFailed": 1,
    "inventory.StockReleased": 1,
    "payments.PaymentProcessed": 1,
    "payments.PaymentFailed": 1,
    "payments.PaymentRefunded": 1,
    "shipping.ShipmentCreated": 1,
    "shipping.OrderShipped": 1,
    "shipping.ShipmentCancelled": 1,
    "shipping.ShipmentCancellationRefused": 1,
    "notifications.CustomerNotified": 1,
}
TIMELINE_EVENT_TYPES: tuple[str, ...] = tuple(TIMELINE_EVENTS)


def timeline_project(messages: list[Message]) -> None:
    services.timeline_apply_many(messages=messages)


for _event_type, _version in TIMELINE_EVENTS.items():
    timeline.handler(_event_type, versions=_version, many=True)(timeline_project)
