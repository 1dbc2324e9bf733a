"""Concurrent producers, two relays and two consumers per group: each aggregate stays in order."""

import random
import threading

import pytest
from django.db import connection

from conftest import wait_for
from outbox import layout as layouts
from outbox.models import InboxEntry, OutboxEvent
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import (
    GROUPS,
    applied_steps,
    child,
    kill,
    published_steps,
    stop,
    thing_event,
)

PRODUCERS = 4
EVENTS_PER_PRODUCER = 40
THINGS_PER_PARTITION = 3


def _things_on_every_partition(partitions: int) -> list[Thing]:
    by_partition: dict[int, list[Thing]] = {p: [] for p in range(partitions)}
    for _ in range(100):
        thing = Thing.objects.create(name="shared")
        bucket = by_partition[layouts.current().partition_for("thing", str(thing.pk))]
        if len(bucket) < THINGS_PER_PARTITION:
            bucket.append(thing)
        if all(len(b) == THINGS_PER_PARTITION for b in by_partition.values()):
            return [t for bucket in by_partition.values() for t in bucket]
    raise AssertionError("could not spread things over every partition")


def _produce(seed: int, thing_ids: list[int], errors: list[BaseException]) -> None:
    try:
        rnd = random.Random(seed)
        for _ in range(EVENTS_PER_PRODUCER):
            thing_event(rnd.choice(thing_ids))
    except BaseException as exc:
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_each_aggregate_is_applied_in_commit_order_by_concurrent_relays_and_consumers(settings):
    settings.OUTBOX_PARTITIONS = 2
    env = {"OUTBOX_PARTITIONS": "2"}
    things = _things_on_every_partition(2)
    thing_ids = [t.pk for t in things]
    # given two relays and two consumers per group, all running
    children = [child("relay", **env), child("relay", **env)]
    children += [child("consume", group, **env) for group in GROUPS for _ in range(2)]
    try:
        for proc in children:
            started = [proc.stdout.readline() for _ in range(3)]  # one log line, then ours
            assert any(line.startswith(("relaying", "consuming ")) for line in started), started
        # when producers publish events for shared aggregates concurrently
        errors: list[BaseException] = []
        producers = [
            threading.Thread(target=_produce, args=(n, thing_ids, errors)) for n in range(PRODUCERS)
        ]
        for producer in producers:
            producer.start()
        for producer in producers:
            producer.join(timeout=60)
        assert errors == []
        total = PRODUCERS * EVENTS_PER_PRODUCER
        assert OutboxEvent.objects.count() == total
        wait_for(
            lambda: Effect.objects.count() == len(GROUPS) * total,
            timeout=60,
            message="every group to apply every event",
        )
        outputs = stop(*children)
    finally:
        for proc in children:
            kill(proc)
    # then nothing is left over for an in-process drain
    assert drain() == 0, outputs
    # and each group applied each aggregate's events once, in commit order
    layout = layouts.current()
    assert {layout.partition_of(s) for s in OutboxEvent.objects.values_list("slot", flat=True)} == {
        0,
        1,
    }
    for thing in things:
        steps = published_steps(thing.pk)
        assert steps == list(range(1, len(steps) + 1))
        for group in GROUPS:
            assert applied_steps(group, thing.pk) == steps, (group, thing.pk)
    assert Effect.objects.count() == InboxEntry.objects.count() == len(GROUPS) * total
