from decimal import Decimal

import pytest

from inventory import services
from inventory.models import Product, Reservation
from outbox.models import OutboxEvent
from outbox.testing import deliver


def order_created(order_id: int, lines: list[tuple[str, int]]) -> dict:
    return {
        "order_id": order_id,
        "customer_id": 5,
        "lines": [
            {"sku": sku, "name": sku.title(), "unit_price": "2.00", "quantity": quantity}
            for sku, quantity in lines
        ],
        "total": f"{2 * sum(q for _, q in lines)}.00",
        "currency": "EUR",
        "payment_token": "tok_visa",
    }


def order_cancelled(order_id: int) -> dict:
    return {
        "order_id": order_id,
        "customer_id": 5,
        "reason": "Cancelled by the customer",
        "reason_code": "customer_request",
        "previous_status": "PENDING",
    }


def order_shipped(order_id: int) -> dict:
    return {"shipment_id": 3, "order_id": order_id, "customer_id": 5, "tracking_number": "TRK1"}


def deliver_twice(event_type: str, payload: dict, **kwargs) -> None:
    # Two deliveries with distinct event ids: the inbox cannot help, the service must.
    assert deliver("inventory", event_type, payload, **kwargs) is True
    assert deliver("inventory", event_type, payload, **kwargs) is True


def snapshot(order_id: int, sku: str) -> tuple:
    product = Product.objects.get(sku=sku)
    reservation = Reservation.objects.filter(order_id=order_id).first()
    events = list(
        OutboxEvent.objects.filter(aggregate_id__in=[str(order_id), sku]).values_list(
            "event_type", "aggregate_version"
        )
    )
    return product.on_hand, product.reserved, reservation and reservation.status, events


@pytest.fixture
def mug(db):
    return services.product_create(sku="MUG", name="Mug", price=Decimal("2.00"), stock=4)


@pytest.mark.django_db
def test_order_created_reserves_once(mug):
    # when
    deliver(
        "inventory",
        "orders.OrderCreated",
        order_created(21, [("MUG", 3)]),
        aggregate_type="order",
        aggregate_id=21,
    )
    after_first = snapshot(21, "MUG")
    deliver(
        "inventory",
        "orders.OrderCreated",
        order_created(21, [("MUG", 3)]),
        aggregate_type="order",
        aggregate_id=21,
    )

    # then
    assert after_first[:3] == (4, 3, Reservation.Status.HELD)
    assert snapshot(21, "MUG") == after_first
    assert OutboxEvent.objects.get(aggregate_type="reservation", aggregate_id="21").payload == {
        "order_id": 21,
        "lines": [{"sku": "MUG", "quantity": 3}],
    }


@pytest.mark.django_db
def test_order_created_for_missing_stock_fails_once(mug):
    deliver_twice(
        "orders.OrderCreated",
        order_created(22, [("MUG", 5)]),
        aggregate_type="order",
        aggregate_id=22,
    )

    assert snapshot(22, "MUG")[:3] == (4, 0, Reservation.Status.FAILED)
    assert list(
        OutboxEvent.objects.filter(aggregate_type="reservation", aggregate_id="22").values_list(
            "event_type", flat=True
        )
    ) == ["inventory.StockReservationFailed"]


@pytest.mark.django_db
def test_order_cancelled_releases_once(mug):
    deliver(
        "inventory",
        "orders.OrderCreated",
        order_created(23, [("MUG", 2)]),
        aggregate_type="order",
        aggregate_id=23,
    )

    deliver_twice(
        "orders.OrderCancelled", order_cancelled(23), aggregate_type="order", aggregate_id=23
    )

    assert snapshot(23, "MUG")[:3] == (4, 0, Reservation.Status.RELEASED)
    assert list(
        OutboxEvent.objects.filter(aggregate_type="reservation", aggregate_id="23").values_list(
            "event_type", flat=True
        )
    ) == ["inventory.StockReserved", "inventory.StockReleased"]


@pytest.mark.django_db
def test_order_cancelled_without_a_reservation_is_ignored(mug):
    deliver_twice(
        "orders.OrderCancelled", order_cancelled(24), aggregate_type="order", aggregate_id=24
    )

    assert snapshot(24, "MUG")[:3] == (4, 0, None)


@pytest.mark.django_db
def test_order_shipped_fulfils_once(mug):
    deliver(
        "inventory",
        "orders.OrderCreated",
        order_created(25, [("MUG", 3)]),
        aggregate_type="order",
        aggregate_id=25,
    )

    deliver_twice(
        "shipping.OrderShipped", order_shipped(25), aggregate_type="shipment", aggregate_id=3
    )

    assert snapshot(25, "MUG")[:3] == (1, 0, Reservation.Status.FULFILLED)


@pytest.mark.django_db
def test_order_shipped_after_cancel_is_ignored(mug):
    deliver(
        "inventory",
        "orders.OrderCreated",
        order_created(26, [("MUG", 3)]),
        aggregate_type="order",
        aggregate_id=26,
    )
    deliver(
        "inventory",
        "orders.OrderCancelled",
        order_cancelled(26),
        aggregate_type="order",
        aggregate_id=26,
    )

    deliver(
        "inventory",
        "shipping.OrderShipped",
        order_shipped(26),
        aggregate_type="shipment",
        aggregate_id=3,
    )

    assert snapshot(26, "MUG")[:3] == (4, 0, Reservation.Status.RELEASED)
