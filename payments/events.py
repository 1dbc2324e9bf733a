"""The events payments publishes (all version 1), on the aggregate ``payment`` keyed by order id."""

from outbox import Event


class PaymentProcessed(Event):
    """The order's amount was captured."""

    name = "payments.PaymentProcessed"
    version = 1
    aggregate_type = "payment"
    aggregate_id_field = "order_id"

    order_id: int
    payment_id: int
    amount: str
    currency: str


class PaymentFailed(Event):
    """The provider refused the charge (or never answered); ``reason`` is safe to show the customer."""

    name = "payments.PaymentFailed"
    version = 1
    aggregate_type = "payment"
    aggregate_id_field = "order_id"

    order_id: int
    amount: str
    reason: str


class PaymentRefunded(Event):
    """A captured payment was refunded in full."""

    name = "payments.PaymentRefunded"
    version = 1
    aggregate_type = "payment"
    aggregate_id_field = "order_id"

    order_id: int
    payment_id: int
    amount: str
