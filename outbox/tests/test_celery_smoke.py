import pytest
from django.db import transaction

from conftest import wait_for
from outbox import publish
from outbox.publishing import _RelayWake
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect


@pytest.mark.django_db(transaction=True)
def test_commit_wakes_the_relay_without_waiting_for_beat(celery_worker):
    # given a worker with no beat: only the wake-up after commit can move the event
    celery_worker("w1", beat=False)
    # when
    with transaction.atomic():
        publish(ThingHappened(thing_id=7, step=1))
    # then
    wait_for(lambda: Effect.objects.filter(aggregate_id="7").count() == 2, timeout=30)
    assert sorted(Effect.objects.values_list("group", flat=True)) == ["probe-alpha", "probe-beta"]


@pytest.mark.django_db
def test_one_wake_up_per_partition_and_transaction(settings, django_capture_on_commit_callbacks):
    settings.OUTBOX_WAKE_ON_COMMIT = True
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            publish(ThingHappened(thing_id=1, step=1))
            publish(ThingHappened(thing_id=1, step=2))
    assert callbacks == [_RelayWake(0)]
