import logging
import re

import pytest

from shipping import services
from shipping.models import Shipment
from shipping.tests.helpers import LINES, shipment_events
from shop.errors import Conflict, NotFound

pytestmark = pytest.mark.django_db


def test_create_for_order_opens_a_pending_shipment_and_publishes_shipment_created():
    # when
    shipment = services.shipment_create_for_order(
        order_id=7,
        customer_id=3,
        lines=[{"sku": "KB-001", "name": "Keyboard", "unit_price": "89.00", "quantity": 2}],
    )

    # then
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.PENDING
    assert shipment.order_id == 7
    assert shipment.customer_id == 3
    assert shipment.lines == [{"sku": "KB-001", "quantity": 2}]
    assert shipment.tracking_number == ""
    assert shipment.dispatched_at is None
    assert shipment_events(shipment) == [
        ("shipping.ShipmentCreated", {"shipment_id": shipment.pk, "order_id": 7, "customer_id": 3})
    ]


def test_create_for_order_is_idempotent_per_order():
    # given
    first = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    # when
    second = services.shipment_create_for_order(order_id=7, customer_id=3, lines=[])

    # then
    assert second.pk == first.pk
    assert Shipment.objects.filter(order_id=7).count() == 1
    assert Shipment.objects.get(order_id=7).lines == LINES
    assert [name for name, _ in shipment_events(first)] == ["shipping.ShipmentCreated"]


def test_cancel_for_order_cancels_a_pending_shipment_and_publishes_shipment_cancelled():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    # when
    services.shipment_cancel_for_order(order_id=7)

    # then
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.CANCELLED
    assert shipment_events(shipment)[-1] == (
        "shipping.ShipmentCancelled",
        {"shipment_id": shipment.pk, "order_id": 7},
    )


def test_cancel_for_order_twice_publishes_once():
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    services.shipment_cancel_for_order(order_id=7)
    services.shipment_cancel_for_order(order_id=7)

    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.CANCELLED
    assert [name for name, _ in shipment_events(shipment)] == [
        "shipping.ShipmentCreated",
        "shipping.ShipmentCancelled",
    ]


def test_cancel_for_an_order_without_shipment_does_nothing():
    assert services.shipment_cancel_for_order(order_id=404) is None
    assert not Shipment.objects.filter(order_id=404).exists()


def test_cancel_for_order_leaves_a_dispatched_shipment_alone_and_logs(caplog):
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)
    services.shipment_dispatch(shipment_id=shipment.pk)
    shipment.refresh_from_db()

    # when
    with caplog.at_level(logging.WARNING, logger="shipping.services"):
        services.shipment_cancel_for_order(order_id=7)

    # then
    after = Shipment.objects.get(pk=shipment.pk)
    assert after.status == Shipment.Status.DISPATCHED
    assert after.tracking_number == shipment.tracking_number
    assert "dispatched already" in caplog.text
    assert [name for name, _ in shipment_events(shipment)] == [
        "shipping.ShipmentCreated",
        "shipping.OrderShipped",
    ]


def test_dispatch_sets_a_tracking_number_and_publishes_order_shipped():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    # when
    services.shipment_dispatch(shipment_id=shipment.pk)

    # then
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.DISPATCHED
    assert re.fullmatch(r"TRK[0-9A-F]{10}", shipment.tracking_number)
    assert shipment.dispatched_at is not None
    assert shipment_events(shipment)[-1] == (
        "shipping.OrderShipped",
        {
            "shipment_id": shipment.pk,
            "order_id": 7,
            "customer_id": 3,
            "tracking_number": shipment.tracking_number,
        },
    )


def test_tracking_numbers_differ_between_shipments():
    numbers = set()
    for order_id in range(1, 6):
        shipment = services.shipment_create_for_order(order_id=order_id, customer_id=3, lines=LINES)
        numbers.add(services.shipment_dispatch(shipment_id=shipment.pk).tracking_number)
    assert len(numbers) == 5


def test_dispatching_a_dispatched_shipment_conflicts_and_changes_nothing():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)
    tracking_number = services.shipment_dispatch(shipment_id=shipment.pk).tracking_number

    # when
    with pytest.raises(Conflict):
        services.shipment_dispatch(shipment_id=shipment.pk)

    # then
    assert Shipment.objects.get(pk=shipment.pk).tracking_number == tracking_number
    assert [name for name, _ in shipment_events(shipment)] == [
        "shipping.ShipmentCreated",
        "shipping.OrderShipped",
    ]


def test_dispatching_a_cancelled_shipment_conflicts_and_changes_nothing():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)
    services.shipment_cancel_for_order(order_id=7)

    # when
    with pytest.raises(Conflict):
        services.shipment_dispatch(shipment_id=shipment.pk)

    # then
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.CANCELLED
    assert shipment.tracking_number == ""
    assert "shipping.OrderShipped" not in [name for name, _ in shipment_events(shipment)]


def test_dispatching_an_unknown_shipment_is_not_found():
    with pytest.raises(NotFound):
        services.shipment_dispatch(shipment_id=999_999)
