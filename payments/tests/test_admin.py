import pytest

from outbox.models import OutboxEvent
from payments import services
from payments.models import Payment


def pay(order_id: int, token: str = "tok_visa") -> Payment:
    return services.payment_charge_for_order(
        order_id=order_id, customer_id=1, amount="5.00", currency="EUR", payment_token=token
    )


@pytest.mark.django_db
def test_refund_selected_refunds_only_captured_payments(admin_client):
    captured, declined = pay(1), pay(2, token="tok_chargeDeclined")

    response = admin_client.post(
        "/admin/payments/payment/",
        {"action": "refund_selected", "_selected_action": [captured.pk, declined.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert Payment.objects.get(pk=captured.pk).status == Payment.Status.REFUNDED
    assert Payment.objects.get(pk=declined.pk).status == Payment.Status.FAILED
    assert (
        OutboxEvent.objects.filter(
            aggregate_type="payment", event_type="payments.PaymentRefunded", aggregate_id="1"
        ).count()
        == 1
    )
    assert not OutboxEvent.objects.filter(
        aggregate_type="payment", event_type="payments.PaymentRefunded", aggregate_id="2"
    ).exists()
    messages = [str(m) for m in response.context["messages"]]
    assert messages == [
        "Refunded the payments of order(s) 1.",
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
