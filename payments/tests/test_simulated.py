"""The simulated provider: outcomes by test token, faults, idempotency keys, its own ledger."""

from decimal import Decimal

import pytest
from django.db import transaction

from payments.models import SimulatedProviderOperation as Operation
from payments.provider import Outcome, ProviderError, ProviderMisuse, ProviderTimeout
from payments.simulated import SimulatedProvider

# The provider writes its ledger in its own committed transactions: no test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

provider = SimulatedProvider()


def charge(key: str = "k-1", token: str = "tok_visa", amount: str = "25.00") -> Outcome:
    return provider.charge(idempotency_key=key, token=token, amount=Decimal(amount), currency="EUR")


def ledger() -> list[tuple]:
    return list(
        Operation.objects.order_by("id").values_list("kind", "idempotency_key", "status", "calls")
    )


def test_a_charge_succeeds_once_per_key_and_names_the_same_charge():
    # when
    first = charge("k-1")
    again = charge("k-1")
    other = charge("k-2")

    # then
    assert first.succeeded is True
    assert first.reference.startswith("ch_") and len(first.reference) == len("ch_") + 24
    assert again == first
    assert other.reference != first.reference
    assert ledger() == [("charge", "k-1", "succeeded", 2), ("charge", "k-2", "succeeded", 1)]
    assert provider.status(idempotency_key="k-1") == first


@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("tok_chargeDeclined", "25.00", "card declined"),
        ("tok_visa", "10000.01", "amount over limit"),
        ("tok_chargeDeclined", "20000.00", "amount over limit"),
        ("tok_mastercard", "25.00", "unknown payment token"),
        ("", "25.00", "unknown payment token"),
        ("tok_visa", "-1.00", "invalid amount"),
    ],
)
def test_refusals_are_outcomes_and_final(token, amount, reason):
    refused = charge("k-1", token, amount)

    assert refused == Outcome(succeeded=False, reference="", failure_reason=reason)
    assert charge("k-1", token, amount) == refused
    assert provider.status(idempotency_key="k-1") == refused


def test_the_limit_itself_is_allowed():
    assert charge(amount="10000.00").succeeded is True


def test_timeout_before_charging_charges_nothing_then_the_same_key_charges():
    # when
    with pytest.raises(ProviderTimeout):
        charge("k-1", "tok_timeoutBeforeCharge")

    # then nothing happened, and asking says so
    assert provider.status(idempotency_key="k-1") is None
    retried = charge("k-1", "tok_timeoutBeforeCharge")
    assert retried.succeeded is True
    assert ledger() == [("charge", "k-1", "succeeded", 2)]


def test_timeout_after_charging_charged_and_asking_or_retrying_says_so():
    # when
    with pytest.raises(ProviderTimeout):
        charge("k-1", "tok_timeoutAfterCharge")

    # then
    charged = provider.status(idempotency_key="k-1")
    assert charged is not None and charged.succeeded is True
    assert charge("k-1", "tok_timeoutAfterCharge") == charged
    assert ledger() == [("charge", "k-1", "succeeded", 2)]


def test_a_provider_error_charges_nothing_each_time():
    for _ in range(3):
        with pytest.raises(ProviderError):
            charge("k-1", "tok_providerError")

    assert provider.status(idempotency_key="k-1") is None
    assert ledger() == [("charge", "k-1", "not_done", 3)]


def test_a_refund_gives_back_a_charge_once():
    charged = charge("k-1")

    # when
    refund = provider.refund(
        idempotency_key="r-1", charge_reference=charged.reference, amount=Decimal("25.00")
    )
    again = provider.refund(
        idempotency_key="r-1", charge_reference=charged.reference, amount=Decimal("25.00")
    )
    other_key = provider.refund(
        idempotency_key="r-2", charge_reference=charged.reference, amount=Decimal("25.00")
    )

    # then
    assert refund.succeeded is True and refund.reference.startswith("re_")
    assert again == refund
    assert other_key == Outcome(False, "", "charge refunded already")
    assert provider.status(idempotency_key="r-1") == refund


@pytest.mark.parametrize(
    ("reference", "amount", "reason"),
    [
        ("nonsense", "25.00", "unknown charge"),
        (None, "5.00", "refund amount differs from the charge"),
    ],
)
def test_refund_refusals(reference, amount, reason):
    charged = charge("k-1")

    refused = provider.refund(
        idempotency_key="r-1",
        charge_reference=reference or charged.reference,
        amount=Decimal(amount),
    )

    assert refused == Outcome(False, "", reason)


@pytest.mark.parametrize("token", ["tok_timeoutBeforeRefund", "tok_timeoutAfterRefund"])
def test_refund_timeouts_then_one_refund(token):
    charged = charge("k-1", token)
    assert charged.succeeded is True

    # when
    with pytest.raises(ProviderTimeout):
        provider.refund(
            idempotency_key="r-1", charge_reference=charged.reference, amount=Decimal("25.00")
        )

    # then: refunded or not as the token says, and once whatever follows
    done = provider.status(idempotency_key="r-1")
    assert (done is not None) == (token == "tok_timeoutAfterRefund")
    retried = provider.refund(
        idempotency_key="r-1", charge_reference=charged.reference, amount=Decimal("25.00")
    )
    assert retried.succeeded is True
    assert Operation.objects.filter(kind="refund", status="succeeded").count() == 1


def test_it_refuses_to_be_called_inside_a_transaction_and_writes_nothing():
    with transaction.atomic():
        with pytest.raises(ProviderMisuse):
            charge("k-1")
        with pytest.raises(ProviderMisuse):
            provider.status(idempotency_key="k-1")

    assert ledger() == []


def test_a_key_reused_for_another_charge_is_refused():
    charge("k-1", amount="25.00")

    with pytest.raises(ProviderMisuse):
        charge("k-1", amount="26.00")

    assert ledger() == [("charge", "k-1", "succeeded", 1)]
