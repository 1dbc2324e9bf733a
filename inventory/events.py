"""The events inventory publishes (all version 1).

Product events use the aggregate ``product`` keyed by SKU; reservation events
the aggregate ``reservation`` keyed by the order id they belong to.
"""

from pydantic import BaseModel, ConfigDict, Field

from outbox import Event


class StockLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sku: str
    quantity: int


class UnavailableLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sku: str
    requested: int
    available: int


class ProductChanged(Event):
    """A product was created, renamed or repriced (catalogue replicas follow it).

    The payload key ``name`` is the product's name. On the class, ``name`` is the
    event type, so the field is ``product_name`` with the alias ``name``.
    """

    name = "inventory.ProductChanged"
    version = 1
    aggregate_type = "product"
    aggregate_id_field = "sku"

    sku: str
    product_name: str = Field(alias="name")
    price: str


class StockUpdated(Event):
    """A product's stock levels after a change."""

    name = "inventory.StockUpdated"
    version = 1
    aggregate_type = "product"
    aggregate_id_field = "sku"

    sku: str
    on_hand: int
    reserved: int
    available: int


class StockReserved(Event):
    """Every line of an order is held."""

    name = "inventory.StockReserved"
    version = 1
    aggregate_type = "reservation"
    aggregate_id_field = "order_id"

    order_id: int
    lines: list[StockLine]


class StockReservationFailed(Event):
    """An order could not be held in full; nothing was held."""

    name = "inventory.StockReservationFailed"
    version = 1
    aggregate_type = "reservation"
    aggregate_id_field = "order_id"

    order_id: int
    reason: str
    unavailable: list[UnavailableLine]


class StockReleased(Event):
    """An order's held stock was given back."""

    name = "inventory.StockReleased"
    version = 1
    aggregate_type = "reservation"
    aggregate_id_field = "order_id"

    order_id: int
    lines: list[StockLine]
