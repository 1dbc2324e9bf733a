import dataclasses
import json

import pytest
from django.db import connection, transaction

from outbox import layout as layouts
from outbox import publish, streams
from outbox.layout import Layout
from outbox.models import InboxEntry, OutboxEvent
from outbox.relay import batch_query, relay_batch, relay_partition
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


def test_the_relay_s_select_asks_for_next_partitions_as_one_range_of_slots():
    layout = Layout(prefix="p", partitions=8, generation=3)
    sql, params = batch_query(layout, [3, 0, 1], 500)
    assert sql.count("slot >= %s AND slot < %s") == 2
    assert params == [0, 1024, 1536, 2048, "p", 3, 500]


@pytest.mark.django_db(transaction=True)
def test_the_relay_s_select_walks_the_index_of_unpublished_rows_when_they_are_all_there_is(
    settings,
):
    # given a table that holds only unpublished events (a new deployment), analysed
    settings.OUTBOX_PARTITIONS = 8
    layout = layouts.current()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO outbox_outboxevent (event_id, event_type, version, aggregate_type, "
            "aggregate_id, aggregate_version, slot, payload, headers, occurred_at, attempts, "
            "last_error) SELECT gen_random_uuid(), 'probe.ThingHappened', 1, 'thing', g::text, "
            "1, (g * 7919) % 4096, '{}', '{}', now(), 0, '' FROM generate_series(1, 20000) g"
        )
        cursor.execute("ANALYZE outbox_outboxevent")
        # when PostgreSQL plans a batch of one partition, and of four
        for partitions in ([2], [1, 2, 5, 6]):
            sql, params = batch_query(layout, partitions, 500)
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # then it walks the index in id order, neither scanning nor sorting the table
            assert "Index Scan using outbox_event_unpublished" in plan, plan
            assert "Sort" not in plan, plan
