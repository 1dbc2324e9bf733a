"""Trimming streams never removes an entry some group has not acknowledged."""

import pytest
from django.db import transaction
from django.utils import timezone

from outbox import streams
from outbox.consumer import consume
from outbox.maintenance import trim_streams
from outbox.models import DeliveryFailure
from outbox.registry import registry
from outbox.relay import relay_partition
from outbox.testing import drain
from outbox.tests.probe.models import Switch, Thing
from outbox.tests.support import applied_steps, stream_ids, thing_event

EVENTS = 300
STUCK_AT = 150  # the index of the event the lagging group cannot apply yet


@pytest.mark.django_db(transaction=True)
def test_trim_keeps_what_a_lagging_group_has_not_acknowledged(settings, redis_client):
    settings.OUTBOX_RETRY_BACKOFF_S = 60.0  # a failure holds the group back for a minute
    thing = Thing.objects.create(name="busy")
    with transaction.atomic():
        for n in range(EVENTS):
            thing_event(thing.pk, kind="fail" if n == STUCK_AT else "ok")
    assert relay_partition(0).published == EVENTS
    stream = streams.stream_name(0)
    entries = stream_ids()
    assert len(entries) == EVENTS

    # given every group (the shop's too) consumed everything, but one that consumed nothing
    drain(groups=sorted(set(registry.groups) - {"probe-beta"}))
    assert len(applied_steps("probe-alpha", thing.pk)) == EVENTS
    # then nothing is trimmed
    assert trim_streams() == 0
    assert stream_ids() == entries

    # given the lagging group is stuck at an event it cannot apply yet
    fault = Switch.objects.create(kind="fail", on=True)
    result = consume("probe-beta", 0)
    assert result.retry_at is not None
    assert applied_steps("probe-beta", thing.pk) == list(range(1, STUCK_AT + 1))
    assert redis_client.xpending(stream, "probe-beta")["min"] == entries[STUCK_AT]
    # when the streams are trimmed
    removed = trim_streams()
    # then only entries below its first unacknowledged one went
    kept = stream_ids()
    assert 0 < removed <= STUCK_AT
    assert kept == entries[removed:]

    # when the fault is fixed, the retry is due, and the group catches up
    fault.on = False
    fault.save()
    DeliveryFailure.objects.filter(group="probe-beta").update(next_attempt_at=timezone.now())
    consume("probe-beta", 0)
    assert applied_steps("probe-beta", thing.pk) == list(range(1, EVENTS + 1))
    # then the stream shrinks further, keeping the last entry each group read
    removed_now = trim_streams()
    assert removed_now > 0
    assert stream_ids() == entries[removed + removed_now :]
    assert stream_ids()[-1] == entries[-1]
