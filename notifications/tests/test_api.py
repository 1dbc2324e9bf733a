import uuid

import pytest
from rest_framework.test import APIClient

from notifications import services
from notifications.models import Notification
from shop.tests.clients import client_for

pytestmark = pytest.mark.django_db


def notify(customer_id: int, kind: str, order_id: int | None) -> Notification:
    context = {"reason": "Out of stock.", "tracking_number": "TRK0000000001", "total": "1.00"}
    return services.notification_send(
        customer_id=customer_id,
        kind=kind,
        order_id=order_id,
        event_id=uuid.uuid4(),
        context=context | {"lines": []},
    )


@pytest.fixture
def notifications(customer, other_customer):
    welcome = notify(customer.pk, "welcome", None)
    shipped = notify(customer.pk, "order_shipped", 5)
    theirs = notify(other_customer.pk, "order_cancelled", 6)
    return welcome, shipped, theirs


def test_a_customer_lists_only_their_own_notifications(customer, notifications):
    welcome, shipped, _ = notifications

    response = client_for(customer).get("/api/notifications/")

    assert response.status_code == 200
    assert response.data["count"] == 2
    assert response.data["previous"] is None
    assert [dict(row) for row in response.data["results"]] == [
        {
            "id": shipped.pk,
            "kind": "order_shipped",
            "subject": "Your order #5 is on its way",
            "order": 5,
            "created_at": shipped.created_at.isoformat().replace("+00:00", "Z"),
        },
        {
            "id": welcome.pk,
            "kind": "welcome",
            "subject": "Welcome to the shop",
            "order": None,
            "created_at": welcome.created_at.isoformat().replace("+00:00", "Z"),
        },
    ]


def test_staff_too_see_only_their_own(django_user_model, notifications):
    staff = django_user_model.objects.create_user(
        username="staff", password="pw-staff-123", is_staff=True
    )

    response = client_for(staff).get("/api/notifications/")

    assert response.data["count"] == 0


def test_a_customer_reads_one_of_theirs(customer, notifications):
    _, shipped, _ = notifications

    response = client_for(customer).get(f"/api/notifications/{shipped.pk}/")

    assert response.status_code == 200
    assert response.data["subject"] == "Your order #5 is on its way"
    assert "Tracking number: TRK0000000001" in response.data["body"]


def test_another_customers_notification_is_a_404(customer, notifications):
    _, _, theirs = notifications

    assert client_for(customer).get(f"/api/notifications/{theirs.pk}/").status_code == 404


def test_anonymous_is_a_401(notifications):
    welcome, _, _ = notifications

    assert APIClient().get("/api/notifications/").status_code == 401
    assert APIClient().get(f"/api/notifications/{welcome.pk}/").status_code == 401
