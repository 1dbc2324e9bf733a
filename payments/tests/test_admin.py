import pytest

from payments.models import Payment
from payments.models import SimulatedProviderOperation as Operation
from payments.tests.factories import payment_row


def pay(order_id: int, status: str = Payment.Status.CAPTURED) -> Payment:
    return payment_row(order_id, 1, status=status, amount="5.00")


@pytest.mark.django_db
def test_refund_selected_asks_refunds_of_captured_payments_only(admin_client):
    captured, declined = pay(1), pay(2, status=Payment.Status.FAILED)

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "refund_selected", "_selected_action": [captured.pk, declined.pk]},
        follow=True,
    )

    assert response.status_code == 200
    # the refund itself is the task's: the action records that it is wanted
    assert Payment.objects.get(pk=captured.pk).status == Payment.Status.REFUNDING
    assert Payment.objects.get(pk=declined.pk).status == Payment.Status.FAILED
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "Refund asked for the payments of order(s) 1.",
        "Not captured, so not refunded: order(s) 2.",
    ]


@pytest.mark.django_db
def test_payments_are_read_only_in_the_admin(admin_client):
    payment = pay(3)

    assert admin_client.get("/admin/payments/payment/?q=3").status_code == 200
    assert admin_client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
    assert admin_client.get("/admin/payments/payment/add/").status_code == 403
    response = admin_client.post(
        f"/admin/payments/payment/{payment.pk}/change/", {"status": "REFUNDED"}
    )
    assert response.status_code == 403
    assert admin_client.post(f"/admin/payments/payment/{payment.pk}/delete/").status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.CAPTURED


@pytest.mark.django_db
def test_the_simulated_providers_ledger_is_read_only_in_the_admin(admin_client):
    operation = Operation.objects.create(
        idempotency_key="k-1", kind="charge", token="tok_visa", amount="5.00", calls=1
    )

    assert admin_client.get("/admin/payments/simulatedprovideroperation/").status_code == 200
    url = f"/admin/payments/simulatedprovideroperation/{operation.pk}/change/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.post(url, {"calls": 9}).status_code == 403
