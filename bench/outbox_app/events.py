"""The benchmark's event: shaped and sized like ``orders.OrderCreated`` (about 330 bytes of JSON)."""

from pydantic import BaseModel, ConfigDict

from outbox import Event


class BenchLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sku: str
    name: str
    unit_price: str
    quantity: int


class OrderPlaced(Event):
    """``run`` and ``n`` identify the event within a benchmark run; ``track`` asks the
    handlers to record when their transaction committed (the latency phase)."""

    name = "bench.OrderPlaced"
    version = 1
    aggregate_type = "bench_order"
    aggregate_id_field = "order_id"

    order_id: int
    customer_id: int
    lines: list[BenchLine]
    total: str
    currency: str
    payment_token: str
    run: str
    n: int
    track: bool = False
