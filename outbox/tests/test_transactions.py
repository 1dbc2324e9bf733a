"""``outbox.atomic``: no savepoints on the consumer's fast path, and nothing lost without them."""

import contextvars
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import outbox
from outbox import layout as layouts
from outbox import streams
from outbox.consumer import PartitionConsumer, handle_fresh, read
from outbox.models import DeliveryFailure, InboxEntry
from outbox.relay import relay_partition
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Switch, Thing
from outbox.tests.support import GROUPS, applied_steps, thing_event
from outbox.transactions import joining

pytestmark = pytest.mark.django_db(transaction=True)


def _savepoints(queries: list[dict]) -> int:
    return sum(1 for query in queries if query["sql"].startswith("SAVEPOINT"))


def test_a_batch_s_service_blocks_make_no_savepoints():
    # given three events that one read hands to each group as one batch
    thing = Thing.objects.create(name="thing")
    for _ in range(3):
        thing_event(thing.pk)
    # when they are applied (each handler writes in an outbox.atomic() block)
    with CaptureQueriesContext(connection) as captured:
        assert drain() == 3 * len(GROUPS)
    # then no block made a savepoint, and every event was applied once, in order
    assert _savepoints(captured.captured_queries) == 0
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2, 3]] * 2


@pytest.mark.parametrize("caught_at", [1, 2])
def test_a_handler_that_catches_a_failed_block_keeps_its_own_work_and_the_batch(caught_at):
    # given a batch in which one handler catches what a block without a savepoint raised,
    # as the batch's last event and before another
    thing = Thing.objects.create(name="thing")
    for step in (1, 2):
        thing_event(thing.pk, kind="caught" if step == caught_at else "ok")
    # when the batch is applied
    assert drain() == 2 * len(GROUPS)
    # then only the failed block was undone: every event's effect and inbox row committed
    assert [applied_steps(group, thing.pk) for group in GROUPS] == [[1, 2]] * 2
    assert not Effect.objects.filter(step=-1).exists()
    assert InboxEntry.objects.filter(group__in=GROUPS).count() == 2 * len(GROUPS)


def test_a_block_outside_a_consumer_is_a_savepoint_as_transaction_atomic_is():
    with CaptureQueriesContext(connection) as captured:
        with outbox.atomic():
            with outbox.atomic():
                Thing.objects.create(name="inner")
    assert _savepoints(captured.captured_queries) == 1


def test_work_a_batch_hands_to_another_thread_makes_its_savepoints():
    # given a handler's context, inside a fast batch, copied to a thread (as payments'
    # provider calls are)
    seen = []

    def elsewhere() -> None:
        try:
            with CaptureQueriesContext(connection) as captured:
                with outbox.atomic():
                    with outbox.atomic():
                        Thing.objects.create(name="elsewhere")
            seen.append(_savepoints(captured.captured_queries))
        finally:
            connection.close()

    with joining():
        thread = threading.Thread(target=contextvars.copy_context().run, args=(elsewhere,))
        thread.start()
        thread.join(timeout=30)
    # then its nested block was a savepoint there
    assert seen == [1]


def _one_thing_per_partition(partitions: int) -> dict[int, Thing]:
    layout = layouts.current()
    chosen: dict[int, Thing] = {}
    while len(chosen) < partitions:
        thing = Thing.objects.create(name="thing")
        chosen.setdefault(layout.partition_for("thing", str(thing.pk)), thing)
    return chosen


def _read_every_partition(group: str, partitions: int) -> list[tuple[PartitionConsumer, list]]:
    """What a reader holding every partition gets from one XREADGROUP."""
    for partition in range(partitions):
        relay_partition(partition)
    replies = read(streams.get_redis(), group, dict.fromkeys(range(partitions), ">"), count=100)
    return [(PartitionConsumer(group, partition), entries) for partition, entries in replies]


def test_one_read_s_entries_of_several_partitions_are_applied_in_one_transaction(settings):
    # given two events on each of three partitions, read together by one group
    settings.OUTBOX_PARTITIONS = 3
    streams.ensure_groups()
    things = _one_thing_per_partition(3)
    for thing in things.values():
        thing_event(thing.pk)
        thing_event(thing.pk)
    batches = _read_every_partition("probe-alpha", 3)
    assert len(batches) == 3
    # when they are applied the fast way
    with CaptureQueriesContext(connection) as captured:
        results = handle_fresh(batches)
    # then one inbox insert and one transaction wrote every effect, each thing's in order
    assert results is not None and [result.handled for result in results] == [2, 2, 2]
    inserts = [q for q in captured.captured_queries if "INSERT INTO outbox_inboxentry" in q["sql"]]
    assert len(inserts) == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT xmin::text) FROM probe_effect")
        assert cursor.fetchone()[0] == 1
    assert [applied_steps("probe-alpha", t.pk) for t in things.values()] == [[1, 2]] * 3


def test_a_failing_handler_in_one_partition_rolls_the_read_back_and_each_is_redone_alone(
    settings,
):
    # given a read of two partitions, the second's event failing
    settings.OUTBOX_PARTITIONS = 2
    streams.ensure_groups()
    Switch.objects.create(kind="fail", on=True)
    things = _one_thing_per_partition(2)
    thing_event(things[0].pk)
    thing_event(things[1].pk, kind="fail")
    batches = _read_every_partition("probe-alpha", 2)
    # when they are applied together, nothing is applied
    assert handle_fresh(batches) is None
    assert not Effect.objects.exists() and not InboxEntry.objects.exists()
    # then each partition on its own: the good one applied, the failure recorded for retry
    (first, first_entries), (second, second_entries) = sorted(
        batches, key=lambda batch: batch[0].place.partition
    )
    assert first.handle(first_entries, fresh=True).handled == 1
    failed = second.handle(second_entries, fresh=True)
    assert failed.stopped and failed.handled == 0
    assert applied_steps("probe-alpha", things[0].pk) == [1]
    assert applied_steps("probe-alpha", things[1].pk) == []
    assert DeliveryFailure.objects.get().attempts == 1


def test_a_many_handler_takes_a_batch_s_neighbouring_events_in_one_call_in_stream_order(
    settings,
):
    # given a group whose handler of one type takes lists, and a plain one of another
    from outbox import ConsumerGroup
    from outbox.registry import registry
    from outbox.tests.probe.events import ThingHappened

    calls: list[list[int]] = []
    group = ConsumerGroup("probe-many")
    try:

        @group.handler(ThingHappened.name, many=True)
        def project(messages):
            calls.append([m.payload["step"] for m in messages])

        streams.ensure_groups()
        thing = Thing.objects.create(name="thing")
        for _ in range(3):
            thing_event(thing.pk)

        # when one read brings the three events
        (consumer, entries), *_ = _read_every_partition("probe-many", 1)
        result = consumer.handle(entries, fresh=True)

        # then one call took them all, in order, and each has its inbox row
        assert calls == [[1, 2, 3]] and result.handled == 3
        assert InboxEntry.objects.filter(group="probe-many").count() == 3

        # and an event redone the careful way (from the pending list) comes as a list of one
        thing_event(thing.pk)
        (consumer, entries), *_ = _read_every_partition("probe-many", 1)
        assert consumer.handle(entries, fresh=False).handled == 1
        assert calls[-1] == [4]
    finally:
        registry.groups.pop("probe-many", None)
