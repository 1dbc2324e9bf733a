"""What inventory does when orders and shipping report something."""

from inventory import services
from outbox import ConsumerGroup, Message

# Reservations lock products' rows, which the orders of every partition share.
consumer = ConsumerGroup("inventory", transaction_per_event=True)


@consumer.handler("orders.OrderCreated", versions=2)
def on_order_created(message: Message) -> None:
    payload = message.payload
    services.stock_reserve_for_order(
        order_id=payload["order_id"],
        lines=[
            services.LineRequest(sku=line["sku"], quantity=line["quantity"])
            for line in payload["lines"]
        ],
    )


@consumer.handler("orders.OrderCancelled", versions=2)
def on_order_cancelled(message: Message) -> None:
    services.stock_release_for_order(order_id=message.payload["order_id"])


@consumer.handler("shipping.OrderShipped")
def on_order_shipped(message: Message) -> None:
    services.stock_fulfil_for_order(order_id=message.payload["order_id"])
