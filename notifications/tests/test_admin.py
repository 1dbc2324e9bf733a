import uuid

import pytest

from notifications import services

pytestmark = pytest.mark.django_db


def test_the_admin_lists_and_shows_notifications_read_only(admin_client):
    notification = services.notification_send(
        customer_id=1, kind="welcome", order_id=None, event_id=uuid.uuid4(), context={}
    )

    listing = admin_client.get("/admin/notifications/notification/?kind__exact=welcome&q=Welcome")
    detail = admin_client.get(f"/admin/notifications/notification/{notification.pk}/change/")

    assert listing.status_code == 200
    assert notification.subject in listing.content.decode()
    assert detail.status_code == 200
    assert "Save" not in detail.content.decode()
    assert admin_client.get("/admin/notifications/notification/add/").status_code == 403
