import pytest

from outbox.models import OutboxEvent
from outbox.testing import deliver
from payments.models import Payment
from payments.tests.factories import payment_row


def order_created(order_id: int, *, total: str = "42.00", token: str = "tok_visa") -> dict:
    return {
        "order_id": order_id,
        "customer_id": 8,
        "lines": [{"sku": "MUG", "name": "Mug", "unit_price": "21.00", "quantity": 2}],
        "total": total,
        "currency": "EUR",
        "payment_token": token,
    }


def order_cancelled(order_id: int, reason_code: str = "customer_request") -> dict:
    return {
        "order_id": order_id,
        "customer_id": 8,
        "reason": "Cancelled",
        "reason_code": reason_code,
        "previous_status": "PENDING",
    }


def deliver_twice(event_type: str, payload: dict, version: int = 1) -> None:
    # Distinct event ids each time: the inbox lets both through, the service must hold.
    for _ in range(2):
        assert deliver(
            "payments",
            event_type,
            payload,
            aggregate_type="order",
            aggregate_id=payload["order_id"],
            version=version,
        )


def event_types(order_id: int) -> list[str]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="payment", aggregate_id=str(order_id))
        .order_by("id")
        .values_list("event_type", flat=True)
    )


@pytest.mark.django_db
def test_order_created_records_one_charge_to_make_and_calls_no_provider():
    deliver_twice("orders.OrderCreated", order_created(31, token="tok_chargeDeclined"))

    payment = Payment.objects.get(order_id=31)
    assert (
        payment.customer_id,
        str(payment.amount),
        payment.currency,
        payment.payment_token,
        payment.status,
    ) == (8, "42.00", "EUR", "tok_chargeDeclined", Payment.Status.PENDING)
    # the outcome is the task's to record, in a transaction of its own
    assert event_types(31) == []


@pytest.mark.django_db
def test_order_cancelled_asks_for_a_captured_payment_back_once():
    payment_row(34, 8, status=Payment.Status.CAPTURED)

    deliver_twice("orders.OrderCancelled", order_cancelled(34), version=2)

    payment = Payment.objects.get(order_id=34)
    assert payment.status == Payment.Status.REFUNDING
    assert payment.refund_key is not None


@pytest.mark.django_db
def test_order_cancelled_v1_is_upcast_and_handled_the_same():
    payment_row(37, 8, status=Payment.Status.CAPTURED)

    deliver_twice("orders.OrderCancelled", order_cancelled(37), version=1)

    assert Payment.objects.get(order_id=37).status == Payment.Status.REFUNDING


@pytest.mark.django_db
def test_order_cancelled_while_the_charge_is_in_flight_marks_it_for_refund():
    deliver(
        "payments",
        "orders.OrderCreated",
        order_created(38),
        aggregate_type="order",
        aggregate_id=38,
    )

    deliver_twice("orders.OrderCancelled", order_cancelled(38, "timeout"), version=2)

    payment = Payment.objects.get(order_id=38)
    assert (payment.status, payment.refund_requested) == (Payment.Status.PENDING, True)


@pytest.mark.django_db
def test_order_cancelled_after_a_failed_payment_refunds_nothing():
    payment_row(35, 8, status=Payment.Status.FAILED, failure_reason="card declined")

    deliver_twice("orders.OrderCancelled", order_cancelled(35, "payment_failed"), version=2)

    assert Payment.objects.get(order_id=35).status == Payment.Status.FAILED
    assert event_types(35) == []


@pytest.mark.django_db
def test_order_cancelled_without_a_payment_is_ignored():
    deliver_twice("orders.OrderCancelled", order_cancelled(36), version=2)

    assert not Payment.objects.filter(order_id=36).exists()
    assert event_types(36) == []
