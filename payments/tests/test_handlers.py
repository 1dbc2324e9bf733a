import pytest

from outbox.models import OutboxEvent
from outbox.testing import deliver
from payments.models import Payment


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


def deliver_twice(event_type: str, payload: dict) -> None:
    # Distinct event ids each time: the inbox lets both through, the service must hold.
    for _ in range(2):
        assert deliver(
            "payments",
            event_type,
            payload,
            aggregate_type="order",
            aggregate_id=payload["order_id"],
        )


def event_types(order_id: int) -> list[str]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="payment", aggregate_id=str(order_id))
        .order_by("id")
        .values_list("event_type", flat=True)
    )


@pytest.mark.django_db
def test_order_created_charges_the_total_once():
    deliver_twice("orders.OrderCreated", order_created(31))

    payment = Payment.objects.get(order_id=31)
    assert (payment.customer_id, str(payment.amount), payment.currency, payment.status) == (
        8,
        "42.00",
        "EUR",
        Payment.Status.CAPTURED,
    )
    assert event_types(31) == ["payments.PaymentProcessed"]


@pytest.mark.django_db
def test_order_created_with_a_declined_card_fails_once():
    deliver_twice("orders.OrderCreated", order_created(32, token="tok_chargeDeclined"))

    payment = Payment.objects.get(order_id=32)
    assert (payment.status, payment.failure_reason) == (Payment.Status.FAILED, "card declined")
    assert event_types(32) == ["payments.PaymentFailed"]


@pytest.mark.django_db
def test_order_created_over_the_limit_fails():
    deliver_twice("orders.OrderCreated", order_created(33, total="10000.01"))

    assert OutboxEvent.objects.get(aggregate_type="payment", aggregate_id="33").payload == {
        "order_id": 33,
        "amount": "10000.01",
        "reason": "amount over limit",
    }


@pytest.mark.django_db
def test_order_cancelled_refunds_a_captured_payment_once():
    deliver(
        "payments",
        "orders.OrderCreated",
        order_created(34),
        aggregate_type="order",
        aggregate_id=34,
    )

    deliver_twice("orders.OrderCancelled", order_cancelled(34))

    assert Payment.objects.get(order_id=34).status == Payment.Status.REFUNDED
    assert event_types(34) == ["payments.PaymentProcessed", "payments.PaymentRefunded"]


@pytest.mark.django_db
def test_order_cancelled_after_a_failed_payment_refunds_nothing():
    deliver(
        "payments",
        "orders.OrderCreated",
        order_created(35, token="tok_chargeDeclined"),
        aggregate_type="order",
        aggregate_id=35,
    )

    deliver_twice("orders.OrderCancelled", order_cancelled(35, "payment_failed"))

    assert Payment.objects.get(order_id=35).status == Payment.Status.FAILED
    assert event_types(35) == ["payments.PaymentFailed"]


@pytest.mark.django_db
def test_order_cancelled_without_a_payment_is_ignored():
    deliver_twice("orders.OrderCancelled", order_cancelled(36))

    assert not Payment.objects.filter(order_id=36).exists()
    assert event_types(36) == []
