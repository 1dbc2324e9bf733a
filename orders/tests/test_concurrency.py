"""Concurrent writers, in real threads with their own database connections."""

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from orders import services
from orders.models import IdempotencyKey, Order
from orders.tests.factories import age_idempotency_key, order_events, place, seed_product

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*funcs: Callable[[], object]) -> list[object]:
    """Start every function at the same moment in its own thread; return results or errors."""
    barrier = threading.Barrier(len(funcs))
    results: list[object] = [None] * len(funcs)

    def run(index: int, func: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = func()
        except Exception as exc:  # reported to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(funcs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_racing_requests_with_one_idempotency_key_place_one_order():
    seed_product("SKU-1", name="Widget", price="10.00")

    def request() -> services.PlacedOrder:
        return services.order_place(
            customer_id=7, lines=[services.LineIn(sku="SKU-1", quantity=1)], idempotency_key="k"
        )

    for _ in range(5):
        IdempotencyKey.objects.filter(customer_id=7).delete()
        Order.objects.filter(customer_id=7).delete()

        results = run_together(request, request, request)

        assert all(isinstance(result, services.PlacedOrder) for result in results), results
        assert len({result.order.pk for result in results}) == 1
        assert sorted(result.created for result in results) == [False, False, True]
        assert Order.objects.filter(customer_id=7).count() == 1


def test_racing_requests_with_one_expired_key_place_one_new_order():
    seed_product("SKU-1", name="Widget", price="10.00")

    def request() -> services.PlacedOrder:
        return services.order_place(
            customer_id=7, lines=[services.LineIn(sku="SKU-1", quantity=1)], idempotency_key="k"
        )

    for _ in range(5):
        # given: the key placed an order longer ago than the retention
        IdempotencyKey.objects.filter(customer_id=7).delete()
        Order.objects.filter(customer_id=7).delete()
        old = request().order
        age_idempotency_key(7, "k", hours=25)

        # when
        results = run_together(request, request, request)

        # then
        assert all(isinstance(result, services.PlacedOrder) for result in results), results
        new = {result.order.pk for result in results}
        assert len(new) == 1
        assert old.pk not in new
        assert sorted(result.created for result in results) == [False, False, True]
        assert Order.objects.filter(customer_id=7).count() == 2
        assert list(
            IdempotencyKey.objects.filter(customer_id=7).values_list("order_id", flat=True)
        ) == list(new)


def test_racing_stock_and_payment_replies_confirm_exactly_once():
    seed_product("SKU-1", name="Widget", price="10.00")

    for _ in range(5):
        order = place(7, [("SKU-1", 1)])

        results = run_together(
            lambda pk=order.pk: services.order_record_stock_result(order_id=pk, reserved=True),
            lambda pk=order.pk: services.order_record_payment_result(order_id=pk, captured=True),
        )

        assert all(isinstance(result, Order) for result in results), results
        order.refresh_from_db()
        assert order.status == Order.Status.CONFIRMED
        assert [event for event, _ in order_events(order.pk)] == [
            "orders.OrderCreated",
            "orders.OrderConfirmed",
        ]


def test_racing_cancel_and_confirm_leave_one_consistent_outcome():
    seed_product("SKU-1", name="Widget", price="10.00")

    for _ in range(5):
        order = place(7, [("SKU-1", 1)])
        services.order_record_stock_result(order_id=order.pk, reserved=True)

        run_together(
            lambda pk=order.pk: services.order_record_payment_result(order_id=pk, captured=True),
            lambda pk=order.pk: services.order_cancel(order_id=pk, customer_id=7),
        )

        order.refresh_from_db()
        events = [event for event, _ in order_events(order.pk)]
        # Either the cancel came first (the capture then no longer fits), or the
        # order was confirmed and then its cancel asks shipping first: never a
        # cancelled order confirmed.
        assert (order.status, events) in (
            (Order.Status.CANCELLED, ["orders.OrderCreated", "orders.OrderCancelled"]),
            (
                Order.Status.CANCELLING,
                [
                    "orders.OrderCreated",
                    "orders.OrderConfirmed",
                    "orders.OrderCancellationRequested",
                ],
            ),
        )
