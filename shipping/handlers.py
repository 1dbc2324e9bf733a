"""What shipping reacts to: confirmed orders get a shipment; cancelled ones lose it."""

from outbox import ConsumerGroup, Message
from shipping import services

consumer = ConsumerGroup("shipping")


@consumer.handler("orders.OrderConfirmed")
def on_order_confirmed(message: Message) -> None:
    payload = message.payload
    services.shipment_create_for_order(
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        lines=payload["lines"],
    )


@consumer.handler("orders.OrderCancelled")
def on_order_cancelled(message: Message) -> None:
    services.shipment_cancel_for_order(order_id=message.payload["order_id"])
