import pytest
from django.db import transaction

from outbox import publish
from outbox.models import InboxEntry, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect


@pytest.mark.django_db(transaction=True)
def test_publish_relay_consume_round_trip():
    with transaction.atomic():
        publish(ThingHappened(thing_id=1, step=1))
        publish(ThingHappened(thing_id=1, step=2))
    drain()
    assert list(
        Effect.objects.filter(group="probe-alpha").values_list("step", flat=True).order_by("id")
    ) == [1, 2]
    assert Effect.objects.filter(group="probe-beta").count() == 2
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 0
    assert InboxEntry.objects.count() == 4
