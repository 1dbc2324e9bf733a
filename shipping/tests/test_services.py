import re

import pytest

from shipping import services
from shipping.models import Shipment
from shipping.tests.helpers import LINES, request_cancel, shipment_events
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


def test_a_cancel_request_cancels_a_pending_shipment_and_publishes_shipment_cancelled():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    # when
    request_cancel(7)

    # then
    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.CANCELLED
    assert shipment_events(shipment)[-1] == (
        "shipping.ShipmentCancelled",
        {"shipment_id": shipment.pk, "order_id": 7},
    )


def test_a_repeated_cancel_request_publishes_once():
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    request_cancel(7)
    request_cancel(7)

    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.CANCELLED
    assert [name for name, _ in shipment_events(shipment)] == [
        "shipping.ShipmentCreated",
        "shipping.ShipmentCancelled",
    ]


def test_a_cancel_request_without_a_shipment_leaves_a_cancelled_one_that_cannot_be_opened():
    # when
    shipment = request_cancel(404, customer_id=3)

    # then a late OrderConfirmed finds it and opens nothing
    assert (shipment.status, shipment.lines) == (Shipment.Status.CANCELLED, [])
    again = services.shipment_create_for_order(order_id=404, customer_id=3, lines=LINES)
    assert (again.pk, again.status) == (shipment.pk, Shipment.Status.CANCELLED)
    assert [name for name, _ in shipment_events(shipment)] == ["shipping.ShipmentCancelled"]


def test_a_cancel_request_for_a_dispatched_shipment_is_refused_and_changes_nothing():
    # given
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)
    services.shipment_dispatch(shipment_id=shipment.pk)
    shipment.refresh_from_db()

    # when
    request_cancel(7)

    # then
    after = Shipment.objects.get(pk=shipment.pk)
    assert (after.status, after.tracking_number) == (
        Shipment.Status.DISPATCHED,
        shipment.tracking_number,
    )
    assert shipment_events(shipment)[-1] == (
        "shipping.ShipmentCancellationRefused",
        {
            "shipment_id": shipment.pk,
            "order_id": 7,
            "customer_id": 3,
            "reason": "dispatched",
            "tracking_number": shipment.tracking_number,
        },
    )


def test_an_expired_cancel_request_is_refused_and_the_shipment_stays_dispatchable():
    shipment = services.shipment_create_for_order(order_id=7, customer_id=3, lines=LINES)

    request_cancel(7, expired=True)

    shipment.refresh_from_db()
    assert shipment.status == Shipment.Status.PENDING
    assert shipment_events(shipment)[-1][1]["reason"] == "expired"
    assert services.shipment_dispatch(shipment_id=shipment.pk).status == Shipment.Status.DISPATCHED


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
    request_cancel(7)

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
