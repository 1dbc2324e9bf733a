from decimal import Decimal

import pytest

from outbox.models import OutboxEvent
from payments import gateway, services
from payments.models import Payment
from shop.errors import DomainError


def events_for(order_id: int) -> list[tuple[str, dict]]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="payment", aggregate_id=str(order_id))
        .order_by("id")
        .values_list("event_type", "payload")
    )


def charge(order_id: int = 1, *, token: str = "tok_visa", amount: str = "30.00") -> Payment:
    return services.payment_charge_for_order(
        order_id=order_id, customer_id=9, amount=amount, currency="EUR", payment_token=token
    )


@pytest.mark.django_db
def test_charge_captures_and_publishes():
    # when
    payment = charge(1, amount="30.5")

    # then
    payment.refresh_from_db()
    assert (
        payment.order_id,
        payment.customer_id,
        payment.amount,
        payment.currency,
        payment.status,
        payment.failure_reason,
    ) == (1, 9, Decimal("30.50"), "EUR", Payment.Status.CAPTURED, "")
    assert (
        payment.gateway_reference
        == gateway.charge("tok_visa", Decimal("30.50"), idempotency_key="order-1").reference
    )
    assert events_for(1) == [
        (
            "payments.PaymentProcessed",
            {"order_id": 1, "payment_id": payment.pk, "amount": "30.50", "currency": "EUR"},
        )
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("tok_chargeDeclined", "30.00", "card declined"),
        ("tok_visa", "10000.01", "amount over limit"),
        ("tok_bogus", "30.00", "unknown payment token"),
    ],
)
def test_refused_charge_is_recorded_as_failed(token, amount, reason):
    payment = charge(2, token=token, amount=amount)

    payment.refresh_from_db()
    assert (payment.status, payment.failure_reason, payment.gateway_reference) == (
        Payment.Status.FAILED,
        reason,
        "",
    )
    assert events_for(2) == [
        ("payments.PaymentFailed", {"order_id": 2, "amount": amount, "reason": reason})
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["tok_visa", "tok_chargeDeclined"])
def test_charge_is_idempotent_per_order(token):
    first = charge(3, token=token)

    # a redelivery, even with another token, charges nothing
    again = charge(3, token="tok_visa", amount="99.00")

    assert again.pk == first.pk
    assert Payment.objects.get(order_id=3).amount == Decimal("30.00")
    assert len(events_for(3)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"currency": "E"}, "currency"),
    ],
)
def test_charge_rejects_malformed_input(kwargs, field):
    arguments = {
        "order_id": 4,
        "customer_id": 9,
        "amount": "1.00",
        "currency": "EUR",
        "payment_token": "tok_visa",
        **kwargs,
    }

    with pytest.raises(DomainError) as excinfo:
        services.payment_charge_for_order(**arguments)

    assert excinfo.value.field == field
    assert not Payment.objects.filter(order_id=4).exists()
    assert events_for(4) == []


@pytest.mark.django_db
def test_refund_of_a_captured_payment_once():
    payment = charge(5)

    refunded = services.payment_refund_for_order(order_id=5)
    again = services.payment_refund_for_order(order_id=5)

    refunded.refresh_from_db()
    assert refunded.status == again.status == Payment.Status.REFUNDED
    assert refunded.refund_reference.startswith("re_")
    assert events_for(5)[1:] == [
        ("payments.PaymentRefunded", {"order_id": 5, "payment_id": payment.pk, "amount": "30.00"})
    ]


@pytest.mark.django_db
def test_refund_of_a_failed_payment_does_nothing():
    charge(6, token="tok_chargeDeclined")

    result = services.payment_refund_for_order(order_id=6)

    assert result.status == Payment.Status.FAILED
    assert [t for t, _ in events_for(6)] == ["payments.PaymentFailed"]


@pytest.mark.django_db
def test_refund_without_a_payment_does_nothing():
    assert services.payment_refund_for_order(order_id=404) is None
    assert events_for(404) == []


@pytest.mark.django_db
def test_refund_refused_by_the_gateway_raises_and_changes_nothing():
    charge(7)
    Payment.objects.filter(order_id=7).update(gateway_reference="legacy-ref")

    with pytest.raises(services.GatewayError):
        services.payment_refund_for_order(order_id=7)

    assert Payment.objects.get(order_id=7).status == Payment.Status.CAPTURED
    assert [t for t, _ in events_for(7)] == ["payments.PaymentProcessed"]
