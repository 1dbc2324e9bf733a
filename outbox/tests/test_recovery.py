"""Redis loses everything: the outbox table is the source of truth and every group catches up once."""

import re

import pytest
from django.db import connection, transaction

from conftest import wait_for
from outbox import streams
from outbox.consumer import consume
from outbox.models import InboxEntry, OutboxEvent
from outbox.relay import relay_partition
from outbox.replay import ReplayFilter, recover_if_lost, replay, select
from outbox.testing import drain
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import (
    BLOCK_KEY,
    GROUPS,
    AdvisoryLock,
    applied_steps,
    child,
    kill,
    lock_report,
    lock_waiters,
    published_steps,
    relation_waiters,
    stop,
    thing_event,
)


def _things(count: int = 3) -> list[Thing]:
    return [Thing.objects.create(name=f"thing {n}") for n in range(count)]


def _events_in_every_state(things: list[Thing]) -> None:
    """Consumed by both groups, by one group, by none, and not even published."""
    for thing in things:
        thing_event(thing.pk)
        thing_event(thing.pk)
    drain()
    for thing in things:
        thing_event(thing.pk)
    relay_partition(0)
    consume("probe-alpha", 0)
    for thing in things:
        thing_event(thing.pk)
    relay_partition(0)
    for thing in things:
        thing_event(thing.pk)
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == len(things)


def _assert_every_group_applied_everything_once(things: list[Thing]) -> None:
    for group in GROUPS:
        for thing in things:
            assert applied_steps(group, thing.pk) == published_steps(thing.pk)
    events = OutboxEvent.objects.count()
    assert Effect.objects.count() == InboxEntry.objects.count() == len(GROUPS) * events
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_after_redis_lost_its_data_a_replay_brings_every_group_to_the_same_effects(outbox_faults):
    # given a running system (its marker is set) with events in every state
    recover_if_lost()
    things = _things()
    _events_in_every_state(things)
    # when Redis loses everything and the whole log is replayed
    outbox_faults.lose_redis_data()
    assert replay(select(ReplayFilter())) == 15
    drain()
    # then every group applied every event once, in each aggregate's order
    for thing in things:
        assert published_steps(thing.pk) == [1, 2, 3, 4, 5]
    _assert_every_group_applied_everything_once(things)


@pytest.mark.django_db(transaction=True)
def test_recovery_republishes_exactly_what_some_group_has_not_applied(outbox_faults):
    recover_if_lost()
    things = _things()
    _events_in_every_state(things)
    outbox_faults.lose_redis_data()
    assert not streams.marker_present()

    # step 3 (alpha applied it, beta did not) and step 4 (nobody did)
    assert recover_if_lost() == 6
    assert streams.marker_present()
    assert recover_if_lost() is None  # the marker is back: nothing more to do
    drain()
    _assert_every_group_applied_everything_once(things)


@pytest.mark.django_db(transaction=True)
def test_events_relayed_before_the_recovery_do_not_overtake_unapplied_ones(outbox_faults):
    # given a published event that no group has applied yet
    recover_if_lost()
    (thing,) = _things(1)
    thing_event(thing.pk)
    relay_partition(0)
    # when Redis loses everything, and a newer event of the aggregate is committed and
    # relayed by the task its commit woke, before any periodic check ran
    outbox_faults.lose_redis_data()
    thing_event(thing.pk)
    relay_partition(0)
    for _ in range(2):
        for group in GROUPS:
            consume(group, 0)
    recover_if_lost()
    drain()
    # then each group still applied them in order
    _assert_every_group_applied_everything_once([thing])


@pytest.mark.django_db(transaction=True)
def test_a_worker_notices_that_redis_lost_its_data_and_republishes_by_itself(
    celery_worker, outbox_faults
):
    things = _things()
    blocker = Thing.objects.create(name="blocker")
    recover_if_lost()  # the marker a running system has
    # one entry per read, so that a blocked handler holds the rest back in the stream
    worker = celery_worker("w1", OUTBOX_CONSUMER_BATCH_SIZE="1")

    # given events the worker applied
    for thing in things:
        thing_event(thing.pk)
        thing_event(thing.pk)
    wait_for(lambda: Effect.objects.count() == 12, timeout=30, message="the first events")
    gate = AdvisoryLock(BLOCK_KEY)
    try:
        # and events in the stream that both groups' handlers are held back from
        with transaction.atomic():
            thing_event(blocker.pk, kind="block")
            for thing in things:
                thing_event(thing.pk)
        wait_for(
            lambda: len(lock_waiters(BLOCK_KEY)) == len(GROUPS),
            timeout=30,
            message="both groups to block",
        )
        # and newer events, relayed or not yet
        for thing in things:
            thing_event(thing.pk)
        # when Redis loses everything
        outbox_faults.lose_redis_data()
    finally:
        gate.release()
    # then, with no command run, the worker republishes what the groups had not applied
    try:
        wait_for(
            lambda: Effect.objects.count() == 26,
            timeout=60,
            message="every group to apply every event",
        )
    except BaseException:  # pytest's Failed: say who holds what (seen once, not explained)
        print(f"effects {Effect.objects.count()}; locks:\n{lock_report()}")
        raise
    assert streams.marker_present()
    # (the block event's handlers may have committed before the check or after it, and
    # the newest three may or may not have been relayed before Redis lost them)
    assert re.search(
        r"Redis lost the outbox's streams: republishing [3-7] unapplied event",
        worker.log.read_text(),
    )
    wait_for(
        lambda: not OutboxEvent.objects.filter(published_at__isnull=True).exists(),
        timeout=30,
        message="everything to be published",
    )
    _assert_every_group_applied_everything_once([*things, blocker])


@pytest.mark.django_db(transaction=True)
def test_redis_losing_its_data_while_a_relay_prepares_a_batch_does_not_reorder(
    settings, outbox_faults
):
    # given a published event that no group has applied yet
    recover_if_lost()
    (thing,) = _things(1)
    thing_event(thing.pk)
    relay_partition(0)
    relay = None
    try:
        with transaction.atomic():
            # and a relay that checked Redis and now waits to select its next batch
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE outbox_outboxevent IN ACCESS EXCLUSIVE MODE")
            relay = child("relay", "--once")
            wait_for(
                lambda: relation_waiters("outbox_outboxevent") or relay.poll() is not None,
                timeout=30,
                message="the relay to wait for the outbox table",
            )
            assert relay.poll() is None, relay.communicate()[0]
            # when Redis loses everything, and a newer event of the aggregate commits
            outbox_faults.lose_redis_data()
            thing_event(thing.pk)
        # and the relay goes on
        output = stop(relay)[0]
    finally:
        if relay is not None:
            kill(relay)
    assert "republishing 1 unapplied event(s)" in output
    drain()
    # then each group still applied them in order
    _assert_every_group_applied_everything_once([thing])
