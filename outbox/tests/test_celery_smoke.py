import pytest
from django.db import transaction

from conftest import wait_for
from outbox import publish
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect


@pytest.mark.django_db(transaction=True)
def test_a_commit_reaches_every_group_through_the_worker_s_readers_without_beat(celery_worker):
    # given a worker with no beat: only its readers can move the event
    celery_worker("w1", beat=False)
    # when
    with transaction.atomic():
        publish(ThingHappened(thing_id=7, step=1))
    # then
    wait_for(lambda: Effect.objects.filter(aggregate_id="7").count() == 2, timeout=30)
    assert sorted(Effect.objects.values_list("group", flat=True)) == ["probe-alpha", "probe-beta"]


@pytest.mark.django_db
def test_publishing_leaves_nothing_to_run_after_commit(django_capture_on_commit_callbacks):
    # A commit wakes the relays by NOTIFY, delivered by PostgreSQL itself: nothing runs
    # after the commit that could fail it (Redis down, say).
    with django_capture_on_commit_callbacks() as callbacks:
        with transaction.atomic():
            publish(ThingHappened(thing_id=1, step=1))
            publish(ThingHappened(thing_id=1, step=2))
    assert callbacks == []
