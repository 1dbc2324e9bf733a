import dataclasses
import json

import pytest
from django.db import transaction

from outbox import layout as layouts
from outbox import publish, streams
from outbox.models import InboxEntry, OutboxEvent
from outbox.relay import relay_batch, relay_partition
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


@pytest.mark.django_db(transaction=True)
def test_the_relay_carries_every_field_of_an_entry_as_it_was_written():
    # given an event whose text needs escaping in JSON and is not ASCII
    kind = 'naïve "quoted" \\ back\\slash ☃ 𝄞 \n new line'
    with transaction.atomic():
        publish(ThingHappened(thing_id=9, step=1, kind=kind))
    row = OutboxEvent.objects.get()
    # when it is relayed
    relay_partition(0)
    # then the stream holds the row's fields, values as text, unchanged
    ((_, fields),) = streams.get_redis().xrange(streams.stream_name(0))
    assert fields["id"] == str(row.event_id) and fields["type"] == ThingHappened.name
    assert (fields["v"], fields["seq"], fields["agg_id"]) == ("1", str(row.pk), "9")
    assert json.loads(fields["payload"]) == row.payload and row.payload["kind"] == kind
    # and a group's handler sees the payload as published
    drain()
    assert Effect.objects.get(group="probe-alpha").payload["kind"] == kind


@pytest.mark.django_db(transaction=True)
def test_one_relay_batch_of_several_partitions_puts_each_event_on_its_partition_s_stream(
    settings,
):
    # given three events on each of three aggregates, on partitions of four
    settings.OUTBOX_PARTITIONS = 4
    streams.ensure_groups()
    streams.set_marker()
    layout = layouts.current()
    with transaction.atomic():
        for step in (1, 2, 3):
            for thing_id in (1, 2, 3):
                publish(ThingHappened(thing_id=thing_id, step=step))
    where = {t: layout.partition_for("thing", str(t)) for t in (1, 2, 3)}
    # when one batch relays every partition
    assert relay_batch(range(4), layout=layout) == 9
    # then each partition's stream holds its aggregates' events, in order, and no other
    client = streams.get_redis()
    for partition in range(4):
        entries = client.xrange(streams.stream_name(partition))
        expected = [
            (str(t), str(step)) for step in (1, 2, 3) for t in (1, 2, 3) if where[t] == partition
        ]
        got = [(f["agg_id"], str(json.loads(f["payload"])["step"])) for _, f in entries]
        assert got == expected
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    # and a layout that changed meanwhile gets nothing
    with transaction.atomic():
        publish(ThingHappened(thing_id=1, step=4))
    stale = dataclasses.replace(layout, generation=layout.generation + 1)
    assert relay_batch(range(4), layout=stale) == 0
