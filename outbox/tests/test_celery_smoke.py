import pytest
from django.db import transaction

from conftest import wait_for
from outbox import publish
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect


@pytest.mark.django_db(transaction=True)
def test_worker_relays_and_consumes_after_commit(celery_worker):
    celery_worker("w1")
    with transaction.atomic():
        publish(ThingHappened(thing_id=7, step=1))
    wait_for(lambda: Effect.objects.filter(aggregate_id="7").count() == 2, timeout=30)
    assert sorted(Effect.objects.values_list("group", flat=True)) == ["probe-alpha", "probe-beta"]
