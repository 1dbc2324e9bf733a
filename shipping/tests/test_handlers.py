import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.testing import deliver
from shipping import services
from shipping.handlers import consumer
from shipping.models import Shipment
from shipping.tests.helpers import shipment_events

pytestmark = pytest.mark.django_db


def confirmed(order_id: int = 11, customer_id: int = 5) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "lines": [
            {"sku": "KB-001", "name": "Mechanical keyboard", "unit_price": "89.00", "quantity": 1},
            {"sku": "MS-002", "name": "Wireless mouse", "unit_price": "29.50", "quantity": 3},
        ],
        "total": "177.50",
    }


def cancel_requested(order_id: int = 11, customer_id: int = 5, *, minutes: int = 2) -> dict:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "reason": "Cancelled at the customer's request.",
        "deadline_at": (timezone.now() + timedelta(minutes=minutes)).isoformat(),
    }


def deliver_order_event(event_type: str, payload: dict, **kwargs) -> bool:
    return deliver(
        "shipping",
        event_type,
        payload,
        aggregate_type="order",
        aggregate_id=payload["order_id"],
        **kwargs,
    )


def test_order_confirmed_creates_one_shipment_even_when_delivered_twice():
    # when: two deliveries with different event ids (a replayed saga)
    assert deliver_order_event("orders.OrderConfirmed", confirmed()) is True
    assert deliver_order_event("orders.OrderConfirmed", confirmed()) is True

    # then
    shipment = Shipment.objects.get(order_id=11)
    assert shipment.status == Shipment.Status.PENDING
    assert shipment.customer_id == 5
    assert shipment.lines == [{"sku": "KB-001", "quantity": 1}, {"sku": "MS-002", "quantity": 3}]
    assert shipment_events(shipment) == [
        ("shipping.ShipmentCreated", {"shipment_id": shipment.pk, "order_id": 11, "customer_id": 5})
    ]


def test_the_same_event_is_applied_once():
    event_id = uuid.uuid4()
    assert deliver_order_event("orders.OrderConfirmed", confirmed(), event_id=event_id) is True
    assert deliver_order_event("orders.OrderConfirmed", confirmed(), event_id=event_id) is False
    assert Shipment.objects.filter(order_id=11).count() == 1


def test_a_cancel_request_cancels_the_pending_shipment_once():
    # given
    deliver_order_event("orders.OrderConfirmed", confirmed())

    # when
    deliver_order_event("orders.OrderCancellationRequested", cancel_requested())
    deliver_order_event("orders.OrderCancellationRequested", cancel_requested())

    # then
    shipment = Shipment.objects.get(order_id=11)
    assert shipment.status == Shipment.Status.CANCELLED
    assert [name for name, _ in shipment_events(shipment)] == [
        "shipping.ShipmentCreated",
        "shipping.ShipmentCancelled",
    ]


def test_a_cancel_request_after_dispatch_is_refused():
    deliver_order_event("orders.OrderConfirmed", confirmed())
    shipment = services.shipment_dispatch(shipment_id=Shipment.objects.get(order_id=11).pk)

    deliver_order_event("orders.OrderCancellationRequested", cancel_requested())

    assert Shipment.objects.get(pk=shipment.pk).status == Shipment.Status.DISPATCHED
    assert shipment_events(shipment)[-1][1]["reason"] == "dispatched"


def test_shipping_no_longer_reacts_to_order_cancelled():
    # A confirmed order is cancelled only after its shipment was; a pending one has none.
    assert "orders.OrderCancelled" not in consumer.handlers
