"""With Redis unreachable, a request that committed answers as it committed: never a 500.

The commit wakes the relays with a NOTIFY that PostgreSQL delivers itself; nothing
after the commit talks to Redis. The events wait in the outbox for Redis to return.
"""

import pytest
from django.contrib.auth import get_user_model

from orders.models import Order
from orders.tests.factories import seed_product
from outbox.models import OutboxEvent
from shipping import services as shipping
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused


@pytest.fixture
def redis_down(settings):
    settings.REDIS_URL = DEAD_REDIS
    settings.OUTBOX_REDIS_URL = DEAD_REDIS


def test_placing_cancelling_and_dispatching_answer_as_they_committed(redis_down):
    # given a customer and staff, and a catalogue, while Redis is down
    seed_product("SKU-1", name="Widget", price="10.00")
    customer = get_user_model().objects.create_user("carol", "carol@example.com", "pw-carol-123")
    staff = get_user_model().objects.create_user(
        "stan", "stan@example.com", "pw-stan-123", is_staff=True
    )
    # when the customer places an order
    placed = client_for(customer, raise_errors=False).post(
        "/api/orders/", {"lines": [{"sku": "SKU-1", "quantity": 1}]}, format="json"
    )
    # then it is 201 and the order and its event are committed
    assert placed.status_code == 201, placed.content
    order_id = placed.json()["id"]
    assert OutboxEvent.objects.filter(
        event_type="orders.OrderCreated", aggregate_id=str(order_id), published_at=None
    ).exists()
    # and cancelling it answers as it committed, too
    cancelled = client_for(customer, raise_errors=False).post(f"/api/orders/{order_id}/cancel/")
    assert cancelled.status_code in (200, 202), cancelled.content
    assert Order.objects.get(pk=order_id).status != Order.Status.PENDING
    # and so does a dispatch
    shipment = shipping.shipment_create_for_order(
        order_id=order_id + 1000, customer_id=customer.pk, lines=[{"sku": "SKU-1", "quantity": 1}]
    )
    dispatched = client_for(staff, raise_errors=False).post(
        f"/api/shipments/{shipment.pk}/dispatch/"
    )
    assert dispatched.status_code == 200, dispatched.content
    assert OutboxEvent.objects.filter(event_type="shipping.OrderShipped").exists()
