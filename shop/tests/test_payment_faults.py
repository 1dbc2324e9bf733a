"""The payment provider's faults, end to end with real workers: money moves once or not at all."""

from __future__ import annotations

import pytest

from conftest import wait_for
from inventory.models import Product, Reservation
from orders.models import Order
from outbox.models import OutboxEvent
from payments.models import Payment
from payments.models import SimulatedProviderOperation as Operation
from shop import failpoints
from shop.tests import sagas

pytestmark = pytest.mark.django_db(transaction=True)


def _processed(order_id: int) -> int:
    return OutboxEvent.objects.filter(
        event_type="payments.PaymentProcessed", aggregate_id=str(order_id)
    ).count()


def test_a_worker_killed_after_the_provider_charged_leaves_exactly_one_capture(
    celery_worker, settings
):
    # given: a charge whose answer is lost (timeout after charging), and a worker that dies
    # after asking the provider what happened but before recording it
    first = sagas.start_worker(celery_worker, settings, "w1")
    sagas.seed_product("KILL-1", stock=5, price="40.00")
    with failpoints.hold("payments.charge_for_order") as payments_consumer:
        order = sagas.place(7, [("KILL-1", 1)], token="tok_timeoutAfterCharge")
        wait_for(lambda: payments_consumer.waiting(), message="payments to take the order")
        before_record = failpoints.Holds("payments.attempt.before_record", [order.pk])
    try:
        wait_for(
            lambda: before_record.waiting() == {order.pk},
            message="the charge task to reach the point before it records",
        )
        payment = Payment.objects.get(order_id=order.pk)
        assert (payment.status, payment.tries) == (Payment.Status.PENDING, 1)
        charges = Operation.objects.filter(idempotency_key=str(payment.charge_key))
        assert list(charges.values_list("status", "calls")) == [("succeeded", 1)]

        # when the worker is killed there, and another one starts
        first.kill()
    finally:
        before_record.close()
    sagas.start_worker(celery_worker, settings, "w2")

    # then the beat sends the charge again; it asks the provider, which says it charged
    wait_for(
        lambda: Order.objects.get(pk=order.pk).status == Order.Status.CONFIRMED,
        message="the order to be confirmed after recovery",
    )
    payment.refresh_from_db()
    assert (payment.status, payment.tries) == (Payment.Status.CAPTURED, 2)
    assert list(charges.values_list("status", "calls")) == [("succeeded", 1)]
    assert _processed(order.pk) == 1
    sagas.assert_money_and_stock({"KILL-1": 5})


def test_declined_timed_out_and_failing_charges(celery_worker, settings):
    # given
    sagas.start_worker(celery_worker, settings, PAYMENTS_MAX_TRIES="3")
    sagas.seed_product("FLT-1", stock=10, price="15.00")

    # when
    declined = sagas.place(7, [("FLT-1", 2)], token="tok_chargeDeclined")
    timed_out = sagas.place(7, [("FLT-1", 3)], token="tok_timeoutBeforeCharge")
    failing = sagas.place(7, [("FLT-1", 1)], token="tok_providerError")
    ids = [declined.pk, timed_out.pk, failing.pk]
    sagas.settle_with_worker(ids)

    # then a decline cancels the order and its reservation is released
    declined.refresh_from_db()
    assert (declined.status, declined.cancel_reason_code, declined.cancel_reason) == (
        "CANCELLED",
        "payment_failed",
        "Payment failed: card declined.",
    )
    assert Reservation.objects.get(order_id=declined.pk).status == Reservation.Status.RELEASED
    declined_payment = Payment.objects.get(order_id=declined.pk)
    assert declined_payment.status == Payment.Status.FAILED

    # a timeout before charging is retried with the same key, and charged once
    timed_out.refresh_from_db()
    assert timed_out.status == Order.Status.CONFIRMED
    payment = Payment.objects.get(order_id=timed_out.pk)
    assert (payment.status, payment.tries) == (Payment.Status.CAPTURED, 1)
    assert list(
        Operation.objects.filter(idempotency_key=str(payment.charge_key)).values_list(
            "status", "calls"
        )
    ) == [("succeeded", 2)]
    assert _processed(timed_out.pk) == 1

    # a provider that keeps failing is tried PAYMENTS_MAX_TRIES times, then the order cancelled
    failing.refresh_from_db()
    assert (failing.status, failing.cancel_reason) == (
        "CANCELLED",
        "Payment failed: payment provider unavailable.",
    )
    failed_payment = Payment.objects.get(order_id=failing.pk)
    assert list(
        Operation.objects.filter(idempotency_key=str(failed_payment.charge_key)).values_list(
            "status", "calls"
        )
    ) == [("not_done", 3)]
    assert Reservation.objects.get(order_id=failing.pk).status == Reservation.Status.RELEASED

    sagas.assert_consistent(ids)
    sagas.assert_money_and_stock({"FLT-1": 10})
    assert Product.objects.get(sku="FLT-1").reserved == 3
