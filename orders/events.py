"""The events orders publishes (aggregate "order", id = order_id). Money travels as strings."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from outbox import Event, upcaster

CancelReasonCode = Literal["out_of_stock", "payment_failed", "customer_request", "timeout"]


class OrderLinePayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sku: str
    name: str
    unit_price: str
    quantity: int


class OrderCreated(Event):
    """An order was placed (PENDING): inventory reserves its lines, payments charges it.

    Version 2 carries ``payment_reference`` instead of the payment token: payments
    resolves it (``shop.vault``), so the token is in no payload and no timeline.
    Version 1 events are raised to 2 without their token (and with an empty
    reference): payments, which needs the token, takes version 1 as it is.
    """

    name = "orders.OrderCreated"
    version = 2
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    lines: list[OrderLinePayload]
    total: str
    currency: str
    payment_reference: str


@upcaster("orders.OrderCreated", from_version=1)
def _order_created_v1_to_v2(payload: dict) -> dict:
    raised = {key: value for key, value in payload.items() if key != "payment_token"}
    raised["payment_reference"] = ""
    return raised


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
    """The order was cancelled; whatever was reserved or captured for it is to be given back.

    Version 2 adds the reason code "timeout" (a saga step did not answer by the
    order's deadline). Version 1 events are raised to 2 unchanged.
    """

    name = "orders.OrderCancelled"
    version = 2
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    reason: str
    reason_code: CancelReasonCode
    previous_status: str


@upcaster("orders.OrderCancelled", from_version=1)
def _order_cancelled_v1_to_v2(payload: dict) -> dict:
    # Every v1 reason code is a v2 one: the payload reads the same.
    return dict(payload)


class OrderCancellationRequested(Event):
    """A confirmed order is to be cancelled: shipping answers first (the order is CANCELLING).

    Shipping cancels the shipment if it has not been dispatched and the request
    has not expired (``deadline_at``, ISO 8601 UTC): after that the order has
    stopped waiting and keeps its shipment.
    """

    name = "orders.OrderCancellationRequested"
    version = 1
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    reason: str
    deadline_at: str


class OrderCancellationRefused(Event):
    """A requested cancel did not happen: the order shipped, or shipping did not answer in time.

    ``status`` is the order's state afterwards: SHIPPED, or CONFIRMED (it can
    still be cancelled again, or dispatched).
    """

    name = "orders.OrderCancellationRefused"
    version = 1
    aggregate_type = "order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    reason: str
    reason_code: Literal["already_shipped", "timeout"]
    status: str
