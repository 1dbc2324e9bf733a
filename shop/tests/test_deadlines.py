"""A saga step that never answers: the order is resolved at its deadline, late replies undone."""

from __future__ import annotations

import pytest

from conftest import wait_for
from inventory.models import Product, Reservation
from orders.models import Order
from outbox.models import OutboxEvent
from payments.models import Payment
from payments.models import SimulatedProviderOperation as Operation
from shipping.models import Shipment
from shop import failpoints
from shop.tests import sagas
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def _count(event_type: str, order_id: int) -> int:
    return OutboxEvent.objects.filter(event_type=event_type, aggregate_id=str(order_id)).count()


def test_a_stopped_group_times_the_order_out_and_its_late_work_is_undone_once(
    celery_worker, settings
):
    # given: orders wait 3 seconds for their replies
    settings.ORDERS_DEADLINE_S = 3.0
    sagas.start_worker(celery_worker, settings)
    sagas.seed_product("DL-1", stock=10, price="20.00")

    # when the payments group is stopped (held before it records anything)
    with failpoints.hold("payments.charge_for_order") as payments_consumer:
        unpaid = sagas.place(7, [("DL-1", 2)])
        wait_for(lambda: payments_consumer.waiting(), message="payments to be held")

        # then the order is cancelled at its deadline with reason timeout, its stock released
        wait_for(
            lambda: Order.objects.get(pk=unpaid.pk).status == Order.Status.CANCELLED,
            message="the deadline to cancel the order",
        )
        unpaid.refresh_from_db()
        assert (unpaid.cancel_reason_code, unpaid.cancel_reason) == (
            "timeout",
            "No answer in time from payment.",
        )
        wait_for(
            lambda: Reservation.objects.get(order_id=unpaid.pk).status == "RELEASED",
            message="the reservation to be released",
        )
        assert not Payment.objects.filter(order_id=unpaid.pk).exists()
    # when payments comes back, it charges late; the capture is refunded, once
    wait_for(
        lambda: Payment.objects.filter(order_id=unpaid.pk, status=Payment.Status.REFUNDED).exists(),
        message="the late charge to be refunded",
    )
    assert list(Operation.objects.values_list("kind", "status")) in (
        [("charge", "succeeded"), ("refund", "succeeded")],
        [("refund", "succeeded"), ("charge", "succeeded")],
    )
    assert _count("payments.PaymentProcessed", unpaid.pk) == 1
    assert _count("payments.PaymentRefunded", unpaid.pk) == 1

    # when the inventory group is stopped instead
    with failpoints.hold("inventory.reserve_for_order") as inventory_consumer:
        unreserved = sagas.place(7, [("DL-1", 3)])
        wait_for(lambda: inventory_consumer.waiting(), message="inventory to be held")
        wait_for(
            lambda: Order.objects.get(pk=unreserved.pk).status == Order.Status.CANCELLED,
            message="the deadline to cancel the second order",
        )
        unreserved.refresh_from_db()
        assert unreserved.cancel_reason == "No answer in time from stock."
        assert not Reservation.objects.filter(order_id=unreserved.pk).exists()

    # then the reservation made late is released, and the capture refunded
    sagas.settle_with_worker([unpaid.pk, unreserved.pk], allowed=sagas.FINAL)
    assert Reservation.objects.get(order_id=unreserved.pk).status == "RELEASED"
    assert _count("inventory.StockReleased", unreserved.pk) == 1
    assert Payment.objects.get(order_id=unreserved.pk).status == Payment.Status.REFUNDED
    assert sagas.assert_consistent([unpaid.pk, unreserved.pk]) == {"CANCELLED": 2}
    sagas.assert_money_and_stock({"DL-1": 10})
    assert Product.objects.get(sku="DL-1").reserved == 0


def test_a_cancel_shipping_does_not_answer_in_time_is_withdrawn_and_the_order_still_ships(
    celery_worker, settings
):
    # given a confirmed order
    settings.ORDERS_DEADLINE_S = 3.0
    sagas.start_worker(celery_worker, settings)
    sagas.seed_product("DL-2", stock=10, price="20.00")
    customer, staff = sagas.user("cora"), sagas.user("stan", staff=True)
    order = sagas.place(customer.pk, [("DL-2", 1)])
    sagas.wait_until_confirmed_with_shipments([order.pk])

    # when shipping is stopped while the customer asks to cancel
    with failpoints.hold("shipping.cancel_request.before_lock", order.pk) as shipping_consumer:
        response = client_for(customer).post(f"/api/orders/{order.pk}/cancel/")
        assert response.status_code == 202
        wait_for(lambda: shipping_consumer.waiting(), message="shipping to be held")

        # then at the deadline the order stops waiting: back to CONFIRMED, the customer told
        wait_for(
            lambda: Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED,
            message="the deadline to withdraw the cancel",
        )
        assert _count("orders.OrderCancellationRefused", order.pk) == 1
        assert _count("orders.OrderCancelled", order.pk) == 0

    # when shipping comes back it refuses the expired request; the shipment can be dispatched
    shipment_id = Shipment.objects.get(order_id=order.pk).pk
    wait_for(
        lambda: OutboxEvent.objects.filter(
            event_type="shipping.ShipmentCancellationRefused", payload__reason="expired"
        ).exists(),
        message="shipping to refuse the expired request",
    )
    dispatched = client_for(staff).post(f"/api/shipments/{shipment_id}/dispatch/")
    assert dispatched.status_code == 200
    sagas.settle_with_worker([order.pk], allowed=sagas.FINAL)
    assert sagas.assert_consistent([order.pk]) == {"SHIPPED": 1}
    sagas.assert_money_and_stock({"DL-2": 10})
