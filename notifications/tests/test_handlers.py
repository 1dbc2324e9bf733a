import uuid

import pytest

from notifications.models import Notification
from outbox.models import OutboxEvent
from outbox.testing import deliver

pytestmark = pytest.mark.django_db

LINES = [
    {"sku": "KB-001", "name": "Mechanical keyboard", "unit_price": "89.00", "quantity": 1},
    {"sku": "MS-002", "name": "Wireless mouse", "unit_price": "29.50", "quantity": 2},
]


def created(customer_id: int) -> dict:
    return {
        "order_id": 42,
        "customer_id": customer_id,
        "lines": LINES,
        "total": "148.00",
        "currency": "EUR",
        "payment_token": "tok_visa",
    }


def confirmed(customer_id: int) -> dict:
    return {"order_id": 42, "customer_id": customer_id, "lines": LINES, "total": "148.00"}


def cancelled(customer_id: int) -> dict:
    return {
        "order_id": 42,
        "customer_id": customer_id,
        "reason": "Payment declined by the card issuer.",
        "reason_code": "payment_failed",
        "previous_status": "PENDING",
    }


def shipped(customer_id: int) -> dict:
    return {
        "shipment_id": 7,
        "order_id": 42,
        "customer_id": customer_id,
        "tracking_number": "TRKABCDEF0123",
    }


def cancellation_refused(customer_id: int, reason_code: str = "already_shipped") -> dict:
    return {
        "order_id": 42,
        "customer_id": customer_id,
        "reason": "The order had been dispatched already.",
        "reason_code": reason_code,
        "status": "SHIPPED" if reason_code == "already_shipped" else "CONFIRMED",
    }


CASES = [
    ("orders.OrderCreated", created, "order", "order_created", "We received your order #42"),
    ("orders.OrderConfirmed", confirmed, "order", "order_confirmed", "Your order #42 is confirmed"),
    (
        "orders.OrderCancelled",
        cancelled,
        "order",
        "order_cancelled",
        "Your order #42 was cancelled",
    ),
    (
        "shipping.OrderShipped",
        shipped,
        "shipment",
        "order_shipped",
        "Your order #42 is on its way",
    ),
    (
        "orders.OrderCancellationRefused",
        cancellation_refused,
        "order",
        "cancellation_refused",
        "We could not cancel your order #42",
    ),
]


@pytest.mark.parametrize(("event_type", "payload", "aggregate", "kind", "subject"), CASES)
def test_each_order_event_notifies_the_customer_once(
    event_type,
    payload,
    aggregate,
    kind,
    subject,
    customer,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    # when: delivered twice with different event ids
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            assert deliver(
                "notifications",
                event_type,
                payload(customer.pk),
                aggregate_type=aggregate,
                aggregate_id=42,
            )

    # then
    notification = Notification.objects.get(customer_id=customer.pk)
    assert notification.kind == kind
    assert notification.subject == subject
    assert notification.order_id == 42
    assert notification.email_sent is True
    assert [(mail.to, mail.subject) for mail in mailoutbox] == [(["alice@example.com"], subject)]
    # the order's timeline learns that the customer was told, once
    assert list(
        OutboxEvent.objects.filter(event_type="notifications.CustomerNotified").values_list(
            "aggregate_id", "payload"
        )
    ) == [
        (
            "42",
            {
                "order_id": 42,
                "notification_id": notification.pk,
                "customer_id": customer.pk,
                "kind": kind,
            },
        )
    ]


@pytest.mark.parametrize(
    ("reason_code", "says"),
    [("already_shipped", "dispatched already"), ("timeout", "could not confirm it in time")],
)
def test_a_refused_cancel_tells_the_customer_why(customer, reason_code, says):
    deliver(
        "notifications",
        "orders.OrderCancellationRefused",
        cancellation_refused(customer.pk, reason_code),
        aggregate_type="order",
    )

    body = Notification.objects.get(customer_id=customer.pk).body
    assert "you asked us to cancel your order #42, but" in body
    assert says in body


def test_order_created_lists_the_lines_and_total(customer, django_capture_on_commit_callbacks):
    deliver("notifications", "orders.OrderCreated", created(customer.pk), aggregate_type="order")

    body = Notification.objects.get(customer_id=customer.pk).body
    assert "  1 x Mechanical keyboard (KB-001) at 89.00\n" in body
    assert "  2 x Wireless mouse (MS-002) at 29.50\n" in body
    assert "Total: 148.00 EUR" in body


def test_order_cancelled_includes_the_reason(customer):
    deliver(
        "notifications", "orders.OrderCancelled", cancelled(customer.pk), aggregate_type="order"
    )

    body = Notification.objects.get(customer_id=customer.pk).body
    assert "Reason: Payment declined by the card issuer." in body


def test_order_shipped_includes_the_tracking_number(customer):
    deliver(
        "notifications", "shipping.OrderShipped", shipped(customer.pk), aggregate_type="shipment"
    )

    body = Notification.objects.get(customer_id=customer.pk).body
    assert "Tracking number: TRKABCDEF0123" in body


def test_user_created_welcomes_the_user_once(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    event_id = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True):
        first = deliver(
            "notifications",
            "shop.UserCreated",
            {"user_id": customer.pk},
            aggregate_type="user",
            aggregate_id=customer.pk,
            event_id=event_id,
        )
        again = deliver(
            "notifications",
            "shop.UserCreated",
            {"user_id": customer.pk},
            aggregate_type="user",
            aggregate_id=customer.pk,
            event_id=event_id,
        )
        other_id = deliver(
            "notifications",
            "shop.UserCreated",
            {"user_id": customer.pk},
            aggregate_type="user",
            aggregate_id=customer.pk,
        )

    assert (first, again, other_id) == (True, False, True)
    notification = Notification.objects.get(customer_id=customer.pk)
    assert notification.kind == "welcome"
    assert notification.order_id is None
    assert notification.event_id == event_id
    assert [(mail.to, mail.subject) for mail in mailoutbox] == [
        (["alice@example.com"], "Welcome to the shop")
    ]
    # no order, so nothing for an order's timeline
    assert not OutboxEvent.objects.filter(event_type="notifications.CustomerNotified").exists()
