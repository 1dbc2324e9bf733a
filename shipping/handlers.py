"""What shipping reacts to: confirmed orders get a shipment; a cancel request is answered.

Orders cancelled while PENDING never had a shipment, and a confirmed order is
cancelled only after its shipment was (``shipment_cancel_on_request``), so
shipping has nothing to do on ``orders.OrderCancelled``.
"""

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


@consumer.handler("orders.OrderCancellationRequested")
def on_order_cancellation_requested(message: Message) -> None:
    payload = message.payload
    services.shipment_cancel_on_request(
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        deadline_at=payload["deadline_at"],
    )
