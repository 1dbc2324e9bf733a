"""Sending notifications: the record is written in the caller's transaction, the email after it."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

import outbox
from notifications import messages
from notifications.events import CustomerNotified
from notifications.models import Notification
from shop.db import Lookup, insert_unless_exists, save_fields

logger = logging.getLogger(__name__)


@functools.cache
def _customers() -> Lookup:
    """A customer's user by id, name and address only (the user model is known once apps load)."""
    return Lookup(get_user_model(), "pk", only=("username", "email"))


def notification_send(
    *,
    customer_id: int,
    kind: str,
    order_id: int | None,
    event_id: uuid.UUID,
    context: Mapping[str, Any],
) -> Notification:
    """Record a notification for a customer and email it once the transaction commits.

    Idempotent: a second call for the same event, or for news already told (the
    same kind for the same order, a second welcome), returns the first record
    and sends nothing. A notification about an order publishes
    ``notifications.CustomerNotified`` (for the order's timeline). The address
    is looked up in the user model by ``customer_id`` when sending (events
    carry no personal data); a customer
    without a user or an email address gets the record only (``email_sent``
    stays False) and a log line. A rolled-back transaction sends nothing.
    Raises ``KeyError`` for an unknown ``kind`` or a context that lacks what it needs.
    """
    with outbox.atomic():
        user = _customers().get(customer_id)
        subject, body = messages.render(
            kind,
            order_id=order_id,
            context=context,
            name=user.get_username() if user is not None else None,
        )
        notification = Notification(
            customer_id=customer_id,
            kind=kind,
            subject=subject,
            body=body,
            order_id=order_id,
            event_id=event_id,
        )
        # The unique constraints say what "told already" means (the same event, the
        # same kind for the same order, a second welcome): one statement decides.
        if not insert_unless_exists(notification):
            existing = _notification_existing(
                customer_id=customer_id, kind=kind, order_id=order_id, event_id=event_id
            )
            logger.info(
                "%s for customer %s (order %s) was sent already as notification %s",
                kind,
                customer_id,
                order_id,
                existing.pk if existing else "?",
            )
            if existing is None:  # pragma: no cover - a constraint said it exists
                raise LookupError(f"notification {kind} for customer {customer_id} vanished")
            return existing
        if order_id is not None:
            outbox.publish(
                CustomerNotified(
                    order_id=order_id,
                    notification_id=notification.pk,
                    customer_id=customer_id,
                    kind=kind,
                )
            )
        address = getattr(user, "email", "") if user is not None else ""
        if not address:
            logger.warning(
                "customer %s has no %s: notification %s recorded but not emailed",
                customer_id,
                "email address" if user is not None else "user account",
                notification.pk,
            )
            return notification

        def email_after_commit() -> None:  # a function: Django names it if it raises
            _email_send_after_commit(notification, subject, body, address)

        transaction.on_commit(email_after_commit, robust=True)
        return notification


def _notification_existing(
    *, customer_id: int, kind: str, order_id: int | None, event_id: uuid.UUID
) -> Notification | None:
    same_news = (
        Q(kind=kind, customer_id=customer_id)
        if kind == Notification.Kind.WELCOME
        else Q(kind=kind, order_id=order_id)
    )
    return Notification.objects.filter(Q(event_id=event_id) | same_news).first()


def _email_send_after_commit(
    notification: Notification, subject: str, body: str, address: str
) -> None:
    # Runs after the record committed: a mail server that fails now cannot undo
    # the record, and the event is not retried; the flag says what happened.
    try:
        send_mail(subject, body, None, [address])
    except OSError:
        logger.exception("emailing notification %s failed", notification.pk)
        return
    notification.email_sent = True
    save_fields(notification, ["email_sent"])
