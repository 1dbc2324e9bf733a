"""Processes die at the worst moment: every group still applies every event exactly once."""

import pytest
import redis
from django.db import transaction
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import wait_for
from outbox import layout as layouts
from outbox import streams
from outbox.consumer import apply, consume
from outbox.message import Message
from outbox.models import InboxEntry, OutboxEvent
from outbox.registry import registry
from outbox.relay import relay_batch, relay_partition
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import (
    BLOCK_KEY,
    GROUPS,
    AdvisoryLock,
    applied_steps,
    assert_audit_clean,
    lock_waiters,
    stream_event_ids,
    terminate_backends,
    thing_event,
)


@pytest.mark.django_db(transaction=True)
def test_a_relay_killed_after_xadd_and_before_marking_published_causes_no_double_effect(
    outbox_processes, outbox_faults
):
    # given six committed events
    things = [Thing.objects.create(name=f"thing {n}") for n in range(3)]
    for thing in things:
        thing_event(thing.pk)
        thing_event(thing.pk)
    event_ids = [
        str(e) for e in OutboxEvent.objects.order_by("id").values_list("event_id", flat=True)
    ]
    # and a relay parked after appending the batch, before marking it published
    with outbox_faults.relay_parked_before_marking() as waiters:
        relay = outbox_processes.start("outbox_relay", "--once")
        waiting = wait_for(
            lambda: waiters() or relay.poll() is not None,
            timeout=30,
            message="the relay to block marking its batch published",
        )
        assert relay.poll() is None, relay.communicate()[0]
        assert stream_event_ids() == event_ids
        # when it dies there (its database session goes with it)
        relay.kill()
        relay.communicate(timeout=30)
        terminate_backends(waiting)

    # then nothing was marked published
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 6
    # when the relay runs again and the consumers drain the stream
    handled = drain()
    # then the batch went to the stream twice, and every effect happened once per group
    assert stream_event_ids() == event_ids + event_ids
    assert handled == 12
    for group in GROUPS:
        for thing in things:
            assert applied_steps(group, thing.pk) == [1, 2]
    assert Effect.objects.count() == 12
    assert InboxEntry.objects.count() == 12
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    assert_audit_clean()


def _pending(group: str) -> int:
    return int(streams.get_redis().xpending(streams.stream_name(0), group)["pending"])


@pytest.mark.django_db(transaction=True)
def test_a_killed_worker_s_pending_messages_are_applied_once_by_the_next_worker(celery_worker):
    first, second = Thing.objects.create(name="first"), Thing.objects.create(name="second")
    gate = AdvisoryLock(BLOCK_KEY)
    try:
        # given a worker whose handlers read four events and block on the first
        w1 = celery_worker("w1", PROBE_WORKER="w1")
        with transaction.atomic():  # one commit: the relay sends them in one batch
            thing_event(first.pk, kind="block")
            thing_event(first.pk)
            thing_event(second.pk)
            thing_event(first.pk)
        wait_for(
            lambda: len(lock_waiters(BLOCK_KEY)) == len(GROUPS),
            timeout=30,
            message="both groups' handlers to block",
        )
        assert [_pending(group) for group in GROUPS] == [4, 4]
        assert not Effect.objects.exists()
        # when the worker is killed with them pending, and another one starts
        w1.kill()
        celery_worker("w2", PROBE_WORKER="w2")
    finally:
        gate.release()
    # then the new worker applies each of them, once per group, in order
    wait_for(
        lambda: Effect.objects.count() == 8 and not any(_pending(g) for g in GROUPS),
        timeout=60,
        message="the second worker to apply and acknowledge the four events",
    )
    for group in GROUPS:
        assert applied_steps(group, first.pk) == [1, 2, 3]
        assert applied_steps(group, second.pk) == [1]
    assert set(Effect.objects.values_list("worker", flat=True)) == {"w2"}
    assert InboxEntry.objects.count() == 8
    assert_audit_clean()


@pytest.mark.django_db(transaction=True)
def test_a_consumer_that_died_after_committing_and_before_acknowledging_is_not_applied_twice(
    redis_client,
):
    # given a consumer that read three entries, applied two, and died before its XACK
    thing = Thing.objects.create(name="thing")
    for _ in range(3):
        thing_event(thing.pk)
    streams.ensure_groups()
    relay_partition(0)
    stream = streams.stream_name(0)
    group = registry.groups["probe-alpha"]
    reply = redis_client.xreadgroup(group.name, streams.CONSUMER, {stream: ">"}, count=10)
    entries = reply[0][1]
    assert len(entries) == 3
    for _, fields in entries[:2]:
        message = Message.decode(fields)
        assert apply(group.name, message, group.handlers[message.type])
    # when its successor runs
    result = consume(group.name, 0)
    # then it skips what was applied, applies the rest in order and acknowledges all
    assert (result.handled, result.acked) == (1, 3)
    assert applied_steps(group.name, thing.pk) == [1, 2, 3]
    assert int(redis_client.xpending(stream, group.name)["pending"]) == 0


@pytest.mark.django_db(transaction=True)
def test_while_redis_is_unreachable_the_relay_keeps_events_unpublished():
    thing = Thing.objects.create(name="thing")
    thing_event(thing.pk)
    thing_event(thing.pk)
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    # when the relay cannot reach Redis
    with pytest.raises(redis.ConnectionError):
        relay_batch(0, layout=layouts.current(), client=unreachable)
    # then the events stay unpublished, with the attempt and the error recorded
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(row.published_at, row.attempts) for row in rows] == [(None, 1), (None, 1)]
    assert all(row.last_error.startswith("ConnectionError: ") for row in rows)
    # and once Redis is back they are relayed and applied once
    drain()
    for group in GROUPS:
        assert applied_steps(group, thing.pk) == [1, 2]
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(row.attempts, row.last_error) for row in rows] == [(2, ""), (2, "")]
    assert all(row.published_at is not None for row in rows)
