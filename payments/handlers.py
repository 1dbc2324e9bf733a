"""What payments does when orders report something."""

from outbox import ConsumerGroup, Message
from payments import services
from shop import vault

consumer = ConsumerGroup("payments")


@consumer.handler("orders.OrderCreated", versions=(1, 2))
def on_order_created(message: Message) -> None:
    payload = message.payload
    if message.version >= 2:  # the token by its reference, kept out of the event
        token = vault.payment_token_resolve(reference=payload.get("payment_reference", ""))
    else:  # events from before references carried the token itself
        token = payload.get("payment_token")
    services.payment_charge_for_order(
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        amount=payload["total"],
        currency=payload.get("currency", "EUR"),
        # No token is no card: the provider refuses it rather than charging a default.
        payment_token=token or "",
    )


@consumer.handler("orders.OrderCancelled", versions=2)
def on_order_cancelled(message: Message) -> None:
    services.payment_refund_for_order(order_id=message.payload["order_id"])
