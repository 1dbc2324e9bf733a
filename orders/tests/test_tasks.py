"""Orders' beat tasks, run the way the worker runs them."""

import pytest

from orders.models import IdempotencyKey
from orders.tasks import prune_idempotency_keys
from orders.tests.factories import age_idempotency_key, place, seed_product
from shop.celery import app

pytestmark = pytest.mark.django_db


def test_beat_prunes_idempotency_keys_hourly():
    # given
    entries = {entry["task"]: entry["schedule"] for entry in app.conf.beat_schedule.values()}

    # then
    assert entries.get(prune_idempotency_keys.name) == 3600.0


def test_the_prune_task_deletes_expired_keys_only(settings):
    # given
    settings.IDEMPOTENCY_KEY_RETENTION_HOURS = 24
    seed_product("SKU-1")
    place(7, [("SKU-1", 1)], idempotency_key="old")
    recent = place(7, [("SKU-1", 1)], idempotency_key="recent")
    age_idempotency_key(7, "old", hours=48)

    # when
    result = prune_idempotency_keys.apply()

    # then
    assert result.get() == 1
    assert list(IdempotencyKey.objects.values_list("key", "order_id")) == [("recent", recent.pk)]
