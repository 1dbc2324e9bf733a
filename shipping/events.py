"""The events shipping publishes (aggregate "shipment", identified by shipment_id)."""

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
