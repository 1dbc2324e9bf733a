"""The events shipping publishes (aggregate "shipment", identified by shipment_id)."""

from typing import Literal

from outbox import Event


class ShipmentCreated(Event):
    name = "shipping.ShipmentCreated"
    version = 1
    aggregate_type = "shipment"
    aggregate_id_field = "shipment_id"

    shipment_id: int
    order_id: int
    customer_id: int


class OrderShipped(Event):
    name = "shipping.OrderShipped"
    version = 1
    aggregate_type = "shipment"
    aggregate_id_field = "shipment_id"

    shipment_id: int
    order_id: int
    customer_id: int
    tracking_number: str


class ShipmentCancelled(Event):
    name = "shipping.ShipmentCancelled"
    version = 1
    aggregate_type = "shipment"
    aggregate_id_field = "shipment_id"

    shipment_id: int
    order_id: int


class ShipmentCancellationRefused(Event):
    """Shipping did not cancel the shipment an order's cancel asked for.

    ``reason`` "dispatched": it had left (``tracking_number`` says how to find
    it). "expired": the request came after its deadline, when the order no
    longer waits for it; the shipment stays as it was.
    """

    name = "shipping.ShipmentCancellationRefused"
    version = 1
    aggregate_type = "shipment"
    aggregate_id_field = "shipment_id"

    shipment_id: int
    order_id: int
    customer_id: int
    reason: Literal["dispatched", "expired"]
    tracking_number: str
