"""The events orders publishes (aggregate "order", id = order_id). Money travels as strings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from outbox import Event


class OrderLinePayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sku: str
    name: str
    unit_price: str
    quantity: int


class OrderCreated(Event):
    """An order was placed (PENDING): inventory reserves its lines, payments charges it."""

    name = "orders.OrderCreated"
    version = 1
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    lines: list[OrderLinePayload]
    total: str
    currency: str
    payment_token: str


class OrderConfirmed(Event):
    """Stock is reserved and the payment captured: the order can be shipped."""

    name = "orders.OrderConfirmed"
    version = 1
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    lines: list[OrderLinePayload]
    total: str


class OrderCancelled(Event):
    """The order was cancelled; whatever was reserved or captured for it is to be given back."""

    name = "orders.OrderCancelled"
    version = 1
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    reason: str
    reason_code: Literal["out_of_stock", "payment_failed", "customer_request"]
    previous_status: str
