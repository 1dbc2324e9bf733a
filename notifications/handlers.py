"""What notifications reacts to: each event worth telling a customer about becomes one email."""

from notifications import services
from notifications.models import Notification
from outbox import ConsumerGroup, Message

# No one waits on an email by the millisecond: while busy, the group gathers entries
# for up to 50 ms between reads, so one commit sends several.
consumer = ConsumerGroup("notifications", linger_ms=50)


@consumer.handler("orders.OrderCreated", versions=2)
def on_order_created(message: Message) -> None:
    payload = message.payload
    services.notification_send(
        customer_id=payload["customer_id"],
        kind=Notification.Kind.ORDER_CREATED,
        order_id=payload["order_id"],
        event_id=message.event_id,
        context={
            "lines": payload["lines"],
            "total": payload["total"],
            "currency": payload["currency"],
        },
    )


@consumer.handler("orders.OrderConfirmed")
def on_order_confirmed(message: Message) -> None:
    payload = message.payload
    services.notification_send(
        customer_id=payload["customer_id"],
        kind=Notification.Kind.ORDER_CONFIRMED,
        order_id=payload["order_id"],
        event_id=message.event_id,
        context={"lines": payload["lines"], "total": payload["total"]},
    )


@consumer.handler("orders.OrderCancelled", versions=2)
def on_order_cancelled(message: Message) -> None:
    payload = message.payload
    services.notification_send(
        customer_id=payload["customer_id"],
        kind=Notification.Kind.ORDER_CANCELLED,
        order_id=payload["order_id"],
        event_id=message.event_id,
        context={"reason": payload["reason"], "reason_code": payload["reason_code"]},
    )


@consumer.handler("shipping.OrderShipped")
def on_order_shipped(message: Message) -> None:
    payload = message.payload
    services.notification_send(
        customer_id=payload["customer_id"],
        kind=Notification.Kind.ORDER_SHIPPED,
        order_id=payload["order_id"],
        event_id=message.event_id,
        context={"tracking_number": payload["tracking_number"]},
    )


@consumer.handler("orders.OrderCancellationRefused")
def on_order_cancellation_refused(message: Message) -> None:
    payload = message.payload
    services.notification_send(
        customer_id=payload["customer_id"],
        kind=Notification.Kind.CANCELLATION_REFUSED,
        order_id=payload["order_id"],
        event_id=message.event_id,
        context={"reason": payload["reason"], "reason_code": payload["reason_code"]},
    )


@consumer.handler("shop.UserCreated")
def on_user_created(message: Message) -> None:
    services.notification_send(
        customer_id=message.payload["user_id"],
        kind=Notification.Kind.WELCOME,
        order_id=None,
        event_id=message.event_id,
        context={},
    )
