import pytest
from rest_framework.test import APIClient

from notifications.models import Notification
from outbox.testing import drain

pytestmark = pytest.mark.django_db


def test_a_new_customer_is_welcomed_by_email(mailoutbox, django_capture_on_commit_callbacks):
    # given
    response = APIClient().post(
        "/api/customers/",
        {"username": "alice", "email": "alice@example.com", "password": "correct-horse-battery"},
        format="json",
    )
    user_id = response.json()["id"]

    # when: the relay and the notifications consumer run
    with django_capture_on_commit_callbacks(execute=True):
        drain(groups=["notifications"])

    # then
    welcome = Notification.objects.get(customer_id=user_id)
    assert welcome.kind == "welcome"
    assert welcome.email_sent is True
    assert [(mail.to, mail.subject) for mail in mailoutbox] == [
        (["alice@example.com"], "Welcome to the shop")
    ]
