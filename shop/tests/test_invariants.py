"""The saga's money and stock invariants over a mixed run of 200 orders, with real workers.

The run has everything at once: good and declined cards, provider timeouts and
errors, orders out of stock, a payments group stopped past the orders'
deadline, a worker killed mid-run, customer cancels while pending, and cancels
crossed with dispatches of confirmed orders. Afterwards the provider holds
exactly the totals of the orders that shipped or stand confirmed, stock on hand
is what was seeded less what was dispatched, and every order has ended.
"""

from __future__ import annotations

import itertools

import pytest

from conftest import wait_for
from orders.models import Order
from shipping.models import Shipment
from shop import failpoints
from shop.tests import sagas
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db(transaction=True)

SEEDED = {"MIX-A": 400, "MIX-B": 120}
TOKENS = [
    "tok_visa",
    "tok_visa",
    "tok_visa",
    "tok_visa",
    "tok_chargeDeclined",
    "tok_timeoutBeforeCharge",
    "tok_timeoutAfterCharge",
    "tok_providerError",
    "tok_timeoutBeforeRefund",
    "tok_timeoutAfterRefund",
    "tok_amex",  # unknown to the provider
]
LINES = [
    [("MIX-A", 1)],
    [("MIX-B", 2)],
    [("MIX-A", 2), ("MIX-B", 1)],
    [("MIX-A", 1), ("MIX-B", 3)],
]
STOPPED, TOTAL = 20, 200


def test_money_and_stock_hold_over_a_mixed_run_of_200_orders(celery_worker, settings):
    # given
    first = sagas.start_worker(celery_worker, settings, "w1", PAYMENTS_MAX_TRIES="3")
    for sku, stock in SEEDED.items():
        sagas.seed_product(sku, stock=stock, price="9.99" if sku == "MIX-A" else "24.50")
    customer, staff = sagas.user("mia"), sagas.user("max", staff=True)
    as_customer, as_staff = client_for(customer), client_for(staff)
    shapes = zip(itertools.cycle(TOKENS), itertools.cycle(LINES), strict=False)
    ids: list[int] = []

    def place_next() -> Order:
        token, lines = next(shapes)
        order = sagas.place(customer.pk, lines, token=token)
        ids.append(order.pk)
        return order

    # when the payments group is stopped past the deadline of the first orders
    settings.ORDERS_DEADLINE_S = 3.0
    with failpoints.hold("payments.charge_for_order") as payments_consumer:
        stopped = [place_next().pk for _ in range(STOPPED)]
        wait_for(lambda: payments_consumer.waiting(), message="payments to be held")
        wait_for(
            lambda: sagas.statuses(stopped)[Order.Status.PENDING] == 0,
            message="the stopped orders to time out",
        )

    # and the rest come with a long deadline, some cancelled while pending, a worker killed
    settings.ORDERS_DEADLINE_S = 120.0
    for n in range(TOTAL - STOPPED):
        order = place_next()
        if n % 9 == 4:
            assert as_customer.post(f"/api/orders/{order.pk}/cancel/").status_code in (200, 202)
        if n == (TOTAL - STOPPED) // 2:
            first.kill()  # charges, reservations and events in flight
            sagas.start_worker(celery_worker, settings, "w2", PAYMENTS_MAX_TRIES="3")
    wait_for(
        lambda: not Order.objects.filter(pk__in=ids, status=Order.Status.PENDING).exists(),
        timeout=180,
        interval=0.2,
        message=f"every order to be confirmed or cancelled: {dict(sagas.statuses(ids))}",
    )

    # and the confirmed ones are dispatched, cancelled, both at once, or left waiting
    confirmed = list(
        Order.objects.filter(pk__in=ids, status=Order.Status.CONFIRMED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    sagas.wait_until_confirmed_with_shipments(confirmed)
    shipments = dict(Shipment.objects.filter(order_id__in=confirmed).values_list("order_id", "pk"))
    for n, order_id in enumerate(confirmed):
        cancel = lambda o=order_id: as_customer.post(f"/api/orders/{o}/cancel/")  # noqa: E731
        dispatch = lambda o=order_id: as_staff.post(f"/api/shipments/{shipments[o]}/dispatch/")  # noqa: E731
        if n % 6 in (0, 1):
            sagas.run_together(cancel, dispatch)
        elif n % 6 == 2:
            dispatch()
        elif n % 6 == 3:
            cancel()
        # the rest stay CONFIRMED, waiting for dispatch

    # then, once it has settled: nothing mixed, the money and the stock agree
    sagas.settle_with_worker(ids, timeout=240)
    ends = sagas.assert_consistent(ids)
    assert ends[Order.Status.CONFIRMED] > 0 and ends[Order.Status.SHIPPED] > 0
    assert ends[Order.Status.CANCELLED] > STOPPED
    sagas.assert_money_and_stock(SEEDED)
    # the orders whose payment did not answer in time were cancelled for that, and only for that
    assert set(
        Order.objects.filter(pk__in=stopped).values_list("status", "cancel_reason_code")
    ) == {("CANCELLED", "timeout")}

    # when the last confirmed orders are dispatched, every order has ended
    for order_id in Order.objects.filter(pk__in=ids, status=Order.Status.CONFIRMED).values_list(
        "pk", flat=True
    ):
        assert as_staff.post(f"/api/shipments/{shipments[order_id]}/dispatch/").status_code == 200
    sagas.settle_with_worker(ids, allowed=sagas.FINAL, timeout=120)
    assert set(sagas.assert_consistent(ids)) <= sagas.FINAL
    sagas.assert_money_and_stock(SEEDED)
