"""Charges and refunds in phases: the intent, the provider call outside any transaction, the record."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from outbox.models import OutboxEvent
from payments import services
from payments.models import Payment
from payments.models import SimulatedProviderOperation as Operation
from payments.provider import ProviderMisuse
from payments.simulated import SimulatedProvider
from shop.errors import DomainError


@pytest.fixture(autouse=True)
def _no_celery_messages(settings):
    # The tests run the provider calls themselves (``run``): nothing is sent to a broker.
    settings.PAYMENTS_DISPATCH_ON_COMMIT = False


def events_for(order_id: int) -> list[tuple[str, dict]]:
    return list(
        OutboxEvent.objects.filter(aggregate_type="payment", aggregate_id=str(order_id))
        .order_by("id")
        .values_list("event_type", "payload")
    )


def intent(order_id: int = 1, *, token: str = "tok_visa", amount: str = "30.00") -> Payment:
    return services.payment_charge_for_order(
        order_id=order_id, customer_id=9, amount=amount, currency="EUR", payment_token=token
    )


def run(payment: Payment) -> Payment | None:
    """One run of the payment's open phase, as the Celery task does it."""
    payment.refresh_from_db()
    return services.payment_attempt_run(
        payment_id=payment.pk, status=payment.status, tries=payment.tries
    )


def charges(key) -> list[tuple[str, int]]:
    return list(Operation.objects.filter(idempotency_key=str(key)).values_list("status", "calls"))


# --- the intent: recorded in the caller's transaction, nothing asked of the provider -----


@pytest.mark.django_db
def test_the_intent_is_a_pending_payment_with_its_key_and_no_call_yet(
    settings, django_capture_on_commit_callbacks, monkeypatch
):
    settings.PAYMENTS_DISPATCH_ON_COMMIT = True
    sent = []
    monkeypatch.setattr(services, "_send_attempt", lambda *args: sent.append(args))

    # when
    with django_capture_on_commit_callbacks() as callbacks:
        payment = intent(1, amount="30.5")

    # then
    payment.refresh_from_db()
    assert (
        payment.order_id,
        payment.customer_id,
        payment.amount,
        payment.currency,
        payment.payment_token,
        payment.status,
        payment.tries,
    ) == (1, 9, Decimal("30.50"), "EUR", "tok_visa", Payment.Status.PENDING, 0)
    assert payment.charge_key is not None and payment.due_at > timezone.now()
    assert events_for(1) == []
    assert not Operation.objects.exists()
    # and after the commit, one task message asks for the provider call
    assert len(callbacks) == 1 and sent == []
    callbacks[0]()
    assert sent == [(payment.pk, "PENDING", 0)]


@pytest.mark.django_db
def test_no_task_is_sent_when_dispatch_on_commit_is_off(
    settings, django_capture_on_commit_callbacks
):
    settings.PAYMENTS_DISPATCH_ON_COMMIT = False

    with django_capture_on_commit_callbacks() as callbacks:
        intent(1)

    assert callbacks == []


@pytest.mark.django_db
def test_the_intent_is_recorded_once_per_order():
    first = intent(3)

    again = intent(3, token="tok_chargeDeclined", amount="99.00")

    assert again.pk == first.pk
    assert Payment.objects.get(order_id=3).amount == Decimal("30.00")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"currency": "E"}, "currency"),
    ],
)
def test_the_intent_rejects_malformed_input(kwargs, field):
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


@pytest.mark.django_db
def test_a_run_inside_a_transaction_is_refused_by_the_provider_and_charges_nothing():
    payment = intent(5)

    with transaction.atomic(), pytest.raises(ProviderMisuse):
        run(payment)

    assert not Operation.objects.exists()


@pytest.mark.django_db
def test_refund_of_a_pending_payment_waits_for_the_capture():
    payment = intent(6)

    services.payment_refund_for_order(order_id=6)

    payment.refresh_from_db()
    assert (payment.status, payment.refund_requested) == (Payment.Status.PENDING, True)


@pytest.mark.django_db
def test_refund_without_a_payment_does_nothing():
    assert services.payment_refund_for_order(order_id=404) is None
    assert events_for(404) == []


# --- the provider call and the record (outside any transaction) ---------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_charges_with_the_key_and_records_the_capture():
    payment = intent(1)

    # when
    recorded = run(payment)

    # then
    assert recorded.status == Payment.Status.CAPTURED
    assert recorded.tries == 1 and recorded.due_at is None
    assert (
        recorded.charge_reference
        == SimulatedProvider().status(idempotency_key=str(payment.charge_key)).reference
    )
    assert charges(payment.charge_key) == [("succeeded", 1)]
    assert events_for(1) == [
        (
            "payments.PaymentProcessed",
            {"order_id": 1, "payment_id": payment.pk, "amount": "30.00", "currency": "EUR"},
        )
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("token", "amount", "reason"),
    [
        ("tok_chargeDeclined", "30.00", "card declined"),
        ("tok_visa", "10000.01", "amount over limit"),
        ("tok_bogus", "30.00", "unknown payment token"),
    ],
)
def test_a_refused_charge_is_recorded_as_failed(token, amount, reason):
    payment = intent(2, token=token, amount=amount)

    recorded = run(payment)

    assert (recorded.status, recorded.failure_reason, recorded.charge_reference) == (
        Payment.Status.FAILED,
        reason,
        "",
    )
    assert events_for(2) == [
        ("payments.PaymentFailed", {"order_id": 2, "amount": amount, "reason": reason})
    ]


@pytest.mark.django_db(transaction=True)
def test_timeout_before_charging_is_asked_about_and_retried_with_the_same_key_once():
    payment = intent(3, token="tok_timeoutBeforeCharge")

    recorded = run(payment)

    assert recorded.status == Payment.Status.CAPTURED
    # two calls with the one key: the first lost, the second charged
    assert charges(payment.charge_key) == [("succeeded", 2)]
    assert [t for t, _ in events_for(3)] == ["payments.PaymentProcessed"]


@pytest.mark.django_db(transaction=True)
def test_timeout_after_charging_is_resolved_by_asking_and_not_charged_again():
    payment = intent(4, token="tok_timeoutAfterCharge")

    recorded = run(payment)

    assert recorded.status == Payment.Status.CAPTURED
    assert charges(payment.charge_key) == [("succeeded", 1)]
    assert [t for t, _ in events_for(4)] == ["payments.PaymentProcessed"]


@pytest.mark.django_db(transaction=True)
def test_a_run_that_died_after_the_provider_charged_is_recorded_by_the_next_without_a_call():
    # given: a run claimed the charge and the provider charged, then the run died
    payment = intent(5)
    Payment.objects.filter(pk=payment.pk).update(tries=1)
    SimulatedProvider().charge(
        idempotency_key=str(payment.charge_key),
        token="tok_visa",
        amount=Decimal("30.00"),
        currency="EUR",
    )

    # when the beat sends it again
    recorded = run(payment)

    # then the status lookup answered; the provider was not asked to charge again
    assert (recorded.status, recorded.tries) == (Payment.Status.CAPTURED, 2)
    assert charges(payment.charge_key) == [("succeeded", 1)]
    assert [t for t, _ in events_for(5)] == ["payments.PaymentProcessed"]


@pytest.mark.django_db(transaction=True)
def test_a_stale_run_finds_the_phase_claimed_and_does_nothing():
    payment = intent(6)
    services.payment_attempt_run(payment_id=payment.pk, status="PENDING", tries=0)

    again = services.payment_attempt_run(payment_id=payment.pk, status="PENDING", tries=0)

    assert again is None
    assert charges(payment.charge_key) == [("succeeded", 1)]
    assert len(events_for(6)) == 1


@pytest.mark.django_db(transaction=True)
def test_provider_errors_leave_the_charge_open_with_a_backoff_then_fail_it(settings):
    settings.PAYMENTS_MAX_TRIES = 3
    settings.PAYMENTS_RETRY_BACKOFF_S = 10.0
    payment = intent(7, token="tok_providerError")

    # when
    before = timezone.now()
    first = run(payment)

    # then still open, due again after the backoff
    assert (first.status, first.tries) == (Payment.Status.PENDING, 1)
    assert before + timedelta(seconds=9) < first.due_at < before + timedelta(seconds=11)
    assert events_for(7) == []

    # when the retries run out
    second = run(payment)
    third = run(payment)

    # then
    assert second.status == Payment.Status.PENDING
    assert (third.status, third.failure_reason) == (
        Payment.Status.FAILED,
        "payment provider unavailable",
    )
    assert events_for(7) == [
        (
            "payments.PaymentFailed",
            {"order_id": 7, "amount": "30.00", "reason": "payment provider unavailable"},
        )
    ]
    assert charges(payment.charge_key) == [("not_done", 3)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("token", ["tok_visa", "tok_timeoutBeforeRefund", "tok_timeoutAfterRefund"])
def test_a_captured_payment_is_refunded_once(token):
    payment = intent(8, token=token)
    run(payment)

    # when
    services.payment_refund_for_order(order_id=8)
    refunding = Payment.objects.get(pk=payment.pk)
    refunded = run(payment)
    services.payment_refund_for_order(order_id=8)

    # then
    assert (refunding.status, refunding.tries) == (Payment.Status.REFUNDING, 0)
    assert refunding.refund_key is not None and refunding.refund_key != payment.charge_key
    assert refunded.status == Payment.Status.REFUNDED
    assert refunded.refund_reference.startswith("re_")
    assert Operation.objects.filter(kind="refund", status="succeeded").count() == 1
    assert events_for(8)[1:] == [
        ("payments.PaymentRefunded", {"order_id": 8, "payment_id": payment.pk, "amount": "30.00"})
    ]


@pytest.mark.django_db(transaction=True)
def test_a_capture_that_lands_after_the_cancel_is_refunded_once():
    # given the order was cancelled while its charge was in flight
    payment = intent(9)
    services.payment_refund_for_order(order_id=9)

    # when the charge and then the refund are answered
    charged = run(payment)
    refunded = run(payment)

    # then
    assert charged.status == Payment.Status.REFUNDING
    assert refunded.status == Payment.Status.REFUNDED
    assert [t for t, _ in events_for(9)] == [
        "payments.PaymentProcessed",
        "payments.PaymentRefunded",
    ]


@pytest.mark.django_db(transaction=True)
def test_a_refund_the_provider_refuses_is_recorded_for_staff():
    payment = intent(10)
    run(payment)
    Payment.objects.filter(pk=payment.pk).update(charge_reference="ch_unknown")
    services.payment_refund_for_order(order_id=10)

    refused = run(payment)

    assert (refused.status, refused.failure_reason) == (
        Payment.Status.REFUND_FAILED,
        "unknown charge",
    )
    assert [t for t, _ in events_for(10)] == ["payments.PaymentProcessed"]


@pytest.mark.django_db
def test_the_beat_claims_what_is_due_once(settings):
    settings.PAYMENTS_RESEND_AFTER_S = 30.0
    due, later = intent(11), intent(12)
    Payment.objects.filter(pk=due.pk).update(due_at=timezone.now() - timedelta(seconds=1))

    # when
    first = services.payment_attempts_due()
    second = services.payment_attempts_due()

    # then
    assert first == [services.DueAttempt(payment_id=due.pk, status="PENDING", tries=0)]
    assert second == []
    assert Payment.objects.get(pk=due.pk).due_at > timezone.now() + timedelta(seconds=25)
    assert Payment.objects.get(pk=later.pk).due_at == later.due_at
