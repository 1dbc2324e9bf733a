"""Retention of what grows with traffic: payment token references, browser sessions."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from shop import vault
from shop.models import PaymentTokenReference
from shop.tasks import payment_tokens_prune

pytestmark = pytest.mark.django_db


def test_beat_forgets_references_older_than_the_retention_and_keeps_the_rest():
    # given a reference made now and one made just past the retention
    fresh = vault.payment_token_store(token="tok_visa")
    old = vault.payment_token_store(token="tok_mastercard")
    past = timezone.now() - timedelta(days=settings.PAYMENT_TOKEN_RETENTION_DAYS, minutes=1)
    assert PaymentTokenReference.objects.filter(reference=old).update(created_at=past) == 1

    # when beat's prune runs
    pruned = payment_tokens_prune()

    # then the old one is gone and resolves to nothing; the fresh one still resolves
    assert pruned == 1
    assert vault.payment_token_resolve(reference=old) is None
    assert vault.payment_token_resolve(reference=fresh) == "tok_visa"


def test_the_prunes_are_on_beats_schedule():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"shop.tasks.payment_tokens_prune", "shop.tasks.sessions_prune"} <= tasks


def test_beat_deletes_expired_browser_sessions_only():
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from shop.tasks import sessions_prune

    # given a live session and one that has expired
    live, gone = SessionStore(), SessionStore()
    live.create()
    gone.create()
    Session.objects.filter(session_key=gone.session_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    # when beat's prune runs
    sessions_prune()

    # then only the expired one is gone
    assert set(Session.objects.values_list("session_key", flat=True)) == {live.session_key}
