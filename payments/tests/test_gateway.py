from decimal import Decimal

import pytest

from payments import gateway


def test_visa_succeeds_with_a_charge_reference():
    result = gateway.charge("tok_visa", Decimal("25.00"))

    assert result.succeeded is True
    assert result.failure_reason == ""
    assert result.reference.startswith("ch_")
    assert len(result.reference) == len("ch_") + 24


def test_same_idempotency_key_names_the_same_charge():
    first = gateway.charge("tok_visa", Decimal("25.00"), idempotency_key="order-1")
    again = gateway.charge("tok_visa", Decimal("25.00"), idempotency_key="order-1")
    other = gateway.charge("tok_visa", Decimal("25.00"), idempotency_key="order-2")

    assert first == again
    assert first.reference != other.reference


@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("tok_chargeDeclined", Decimal("25.00"), "card declined"),
        ("tok_visa", Decimal("10000.01"), "amount over limit"),
        ("tok_chargeDeclined", Decimal("20000.00"), "amount over limit"),
        ("tok_mastercard", Decimal("25.00"), "unknown payment token"),
        ("", Decimal("25.00"), "unknown payment token"),
        ("tok_visa", Decimal("-1.00"), "invalid amount"),
    ],
)
def test_refusals(token, amount, reason):
    result = gateway.charge(token, amount)

    assert (result.succeeded, result.reference, result.failure_reason) == (False, "", reason)


def test_the_limit_itself_is_allowed():
    assert gateway.charge("tok_visa", Decimal("10000.00")).succeeded is True


def test_refund_of_a_charge():
    charge = gateway.charge("tok_visa", Decimal("5.00"), idempotency_key="order-9")

    result = gateway.refund(charge.reference)

    assert result.succeeded is True
    assert result.reference.startswith("re_")
    assert gateway.refund(charge.reference) == result


def test_refund_of_an_unknown_reference_fails():
    result = gateway.refund("nonsense")

    assert (result.succeeded, result.reference, result.failure_reason) == (
        False,
        "",
        "unknown charge",
    )
