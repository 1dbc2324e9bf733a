import logging
import uuid

import pytest
from django.db import transaction

from notifications import services
from notifications.models import Notification

pytestmark = pytest.mark.django_db


class Boom(Exception):
    pass


def send_shipped(customer_id: int, *, order_id: int = 42, event_id: uuid.UUID | None = None):
    return services.notification_send(
        customer_id=customer_id,
        kind=Notification.Kind.ORDER_SHIPPED,
        order_id=order_id,
        event_id=event_id or uuid.uuid4(),
        context={"tracking_number": "TRK0123456789"},
    )


def test_the_record_is_written_at_once_and_the_email_sent_after_commit(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notification = send_shipped(customer.pk)
        # then: before commit, nothing has gone out
        assert mailoutbox == []
        assert Notification.objects.get(pk=notification.pk).email_sent is False

    # then: after commit
    assert len(callbacks) == 1
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["alice@example.com"]
    assert mail.subject == "Your order #42 is on its way"
    assert "Hello alice," in mail.body
    assert "Tracking number: TRK0123456789" in mail.body
    notification.refresh_from_db()
    assert notification.email_sent is True
    assert notification.customer_id == customer.pk
    assert notification.kind == "order_shipped"
    assert notification.order_id == 42
    assert notification.subject == mail.subject
    assert notification.body == mail.body


def test_a_rolled_back_transaction_sends_and_keeps_nothing(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    event_id = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom), transaction.atomic():
            send_shipped(customer.pk, event_id=event_id)
            raise Boom

    assert callbacks == []
    assert mailoutbox == []
    assert not Notification.objects.filter(event_id=event_id).exists()


def test_the_same_event_notifies_once(customer, mailoutbox, django_capture_on_commit_callbacks):
    event_id = uuid.uuid4()

    with django_capture_on_commit_callbacks(execute=True):
        first = send_shipped(customer.pk, event_id=event_id)
        second = send_shipped(customer.pk, event_id=event_id)

    assert second.pk == first.pk
    assert Notification.objects.filter(customer_id=customer.pk).count() == 1
    assert len(mailoutbox) == 1


def test_the_same_news_from_another_event_notifies_once(
    customer, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = send_shipped(customer.pk)
        second = send_shipped(customer.pk)

    assert second.pk == first.pk
    assert Notification.objects.filter(order_id=42).count() == 1
    assert len(mailoutbox) == 1


def test_a_customer_gets_one_welcome(customer, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):
            services.notification_send(
                customer_id=customer.pk,
                kind=Notification.Kind.WELCOME,
                order_id=None,
                event_id=uuid.uuid4(),
                context={},
            )

    assert Notification.objects.filter(customer_id=customer.pk, kind="welcome").count() == 1
    assert [mail.subject for mail in mailoutbox] == ["Welcome to the shop"]


def test_an_unknown_customer_gets_a_record_but_no_email(
    mailoutbox, django_capture_on_commit_callbacks, caplog
):
    with (
        caplog.at_level(logging.WARNING, logger="notifications.services"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        notification = send_shipped(987654)

    assert callbacks == []
    assert mailoutbox == []
    notification.refresh_from_db()
    assert notification.email_sent is False
    assert notification.body.startswith("Hello,\n")
    assert "customer 987654 has no user account" in caplog.text


def test_a_customer_without_an_address_gets_a_record_but_no_email(
    django_user_model, mailoutbox, django_capture_on_commit_callbacks, caplog
):
    user = django_user_model.objects.create_user(username="noaddress", password="pw-123-abc")

    with (
        caplog.at_level(logging.WARNING, logger="notifications.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notification = send_shipped(user.pk)

    assert mailoutbox == []
    notification.refresh_from_db()
    assert notification.email_sent is False
    assert f"customer {user.pk} has no email address" in caplog.text


def test_a_failing_mail_server_leaves_the_record_unsent(
    customer, settings, django_capture_on_commit_callbacks, caplog
):
    settings.EMAIL_BACKEND = "notifications.tests.helpers.FailingBackend"

    with (
        caplog.at_level(logging.ERROR, logger="notifications.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        notification = send_shipped(customer.pk)

    notification.refresh_from_db()
    assert notification.email_sent is False
    assert f"emailing notification {notification.pk} failed" in caplog.text


def test_an_unknown_kind_is_a_fault_and_writes_nothing(customer):
    event_id = uuid.uuid4()

    with pytest.raises(KeyError):
        services.notification_send(
            customer_id=customer.pk,
            kind="birthday",
            order_id=None,
            event_id=event_id,
            context={},
        )

    assert not Notification.objects.filter(event_id=event_id).exists()
