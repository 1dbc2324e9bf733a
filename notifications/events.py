"""The events notifications publishes: that a customer was told about an order."""

from outbox import Event


class CustomerNotified(Event):
    """A notification about an order was recorded for its customer (the email follows commit).

    Published once per notification, so the order's timeline shows when the
    customer was told what. No address or text: ids and the kind only.
    """

    name = "notifications.CustomerNotified"
    version = 1
    aggregate_type = "notification"
    aggregate_id_field = "order_id"

    order_id: int
    notification_id: int
    customer_id: int
    kind: str
