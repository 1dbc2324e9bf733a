"""The readers inside real Celery workers: partitions shared, crashes taken over, leases handed back."""

import os
import signal
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from conftest import wait_for
from outbox import layout as layouts
from outbox import lease, streams
from outbox.consumer import consume, lease_name
from outbox.models import DeadLetter, DeliveryFailure, InboxEntry, OutboxEvent
from outbox.relay import RELAY_LEASE
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Thing
from outbox.tests.support import (
    BLOCK_KEY,
    GROUPS,
    AdvisoryLock,
    applied_steps,
    assert_audit_clean,
    lock_waiters,
    lock_waits,
    published_steps,
    raw_connection,
    thing_event,
)

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = (RELAY_LEASE, *(lease_name(group) for group in GROUPS))


def _things(count: int) -> list[Thing]:
    return [Thing.objects.create(name=f"thing {n}") for n in range(count)]


def _things_on_every_partition(partitions: int, *, each: int) -> list[Thing]:
    layout = layouts.current()
    chosen: dict[int, list[Thing]] = {p: [] for p in range(partitions)}
    while any(len(things) < each for things in chosen.values()):
        thing = Thing.objects.create(name="thing")
        bucket = chosen[layout.partition_for("thing", str(thing.pk))]
        if len(bucket) < each:
            bucket.append(thing)
    return [thing for things in chosen.values() for thing in things]


def _produce(thing_ids: list[int], events: int, errors: list[BaseException], pace_s: float = 0.0):
    try:
        for n in range(events):
            thing_event(thing_ids[n % len(thing_ids)])
            if pace_s:
                time.sleep(pace_s)
    except BaseException as exc:
        errors.append(exc)
    finally:
        connection.close()


def _producing(thing_ids: list[int], *, threads: int, events: int, pace_s: float = 0.0):
    errors: list[BaseException] = []
    workers = [
        threading.Thread(target=_produce, args=(thing_ids[n::threads], events, errors, pace_s))
        for n in range(threads)
    ]
    for worker in workers:
        worker.start()
    return workers, errors


def _join(workers, errors) -> None:
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []


def _all_held(partitions: int) -> bool:
    held = lease.taken(ROLES)
    return all((role, p) in held for role in ROLES for p in range(partitions))


def _assert_each_group_applied_each_event_once_in_order(things: list[Thing]) -> None:
    events = OutboxEvent.objects.filter(event_type=ThingHappened.name).count()
    for group in GROUPS:
        for thing in things:
            assert applied_steps(group, thing.pk) == published_steps(thing.pk), (group, thing.pk)
    assert Effect.objects.count() == InboxEntry.objects.count() == len(GROUPS) * events
    assert not DeadLetter.objects.exists()
    assert_audit_clean()


def test_eight_partitions_two_worker_processes_share_the_work_and_keep_each_aggregate_s_order(
    settings, celery_worker
):
    # given eight partitions and a worker with two pool processes
    settings.OUTBOX_PARTITIONS = 8
    things = _things_on_every_partition(8, each=3)
    worker = celery_worker("w1")
    wait_for(lambda: _all_held(8), timeout=30, message="every lease to be held")
    # when producers publish for shared aggregates concurrently
    producers = _producing([t.pk for t in things], threads=4, events=60)
    _join(*producers)
    # then every group applies every event, in each aggregate's order
    wait_for(lambda: Effect.objects.count() == 2 * 240, timeout=60, message="every event applied")
    _assert_each_group_applied_each_event_once_in_order(things)
    # and the events travelled on all eight partitions, worked by both processes
    layout = layouts.current()
    partitions = {
        layout.partition_of(s) for s in OutboxEvent.objects.values_list("slot", flat=True)
    }
    assert partitions == set(range(8))
    assert set(Effect.objects.values_list("pid", flat=True)) == set(worker.reader_pids())
    assert len(worker.reader_pids()) == 2


def test_a_pool_process_killed_mid_stream_is_taken_over_and_nothing_is_lost_or_doubled(
    settings, celery_worker
):
    # given two pool processes sharing four partitions, and events flowing
    settings.OUTBOX_PARTITIONS = 4
    things = _things(12)
    worker = celery_worker("w1")
    wait_for(lambda: _all_held(4), timeout=30, message="every lease to be held")
    first, second = worker.reader_pids()
    producers = _producing([t.pk for t in things], threads=2, events=100, pace_s=0.01)
    wait_for(
        lambda: Effect.objects.filter(pid=first).exists(),
        timeout=30,
        message="the first process to apply events",
    )
    # when one of them is killed (Celery starts another in its place)
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    # then its leases are taken again within a few seconds
    wait_for(lambda: _all_held(4) and len(worker.reader_pids()) == 3, timeout=10)
    assert time.monotonic() - killed_at < 10
    _join(*producers)
    # and every event is applied once per group, in order
    wait_for(lambda: Effect.objects.count() == 2 * 200, timeout=60, message="every event applied")
    _assert_each_group_applied_each_event_once_in_order(things)
    assert second in set(Effect.objects.values_list("pid", flat=True))


def test_a_worker_stopped_with_sigterm_hands_its_leases_to_the_other_promptly(
    settings, celery_worker
):
    # given two workers sharing two partitions
    settings.OUTBOX_PARTITIONS = 2
    (thing,) = _things(1)
    w1 = celery_worker("w1", beat=False)
    w2 = celery_worker("w2", beat=False)
    wait_for(lambda: _all_held(2), timeout=30, message="every lease to be held")
    # when the first stops as a supervisor stops it
    assert w1.terminate() == 0
    stopped_at = time.monotonic()
    # then the other holds every lease within a few seconds, and works
    wait_for(lambda: _all_held(2), timeout=10, message="the other worker to take over")
    assert time.monotonic() - stopped_at < 10
    thing_event(thing.pk)
    wait_for(lambda: Effect.objects.count() == 2, timeout=30)
    assert set(Effect.objects.values_list("pid", flat=True)) <= set(w2.reader_pids())
    assert "giving up" not in w1.log.read_text()


def test_a_payload_that_breaks_its_schema_is_a_dead_letter_on_first_delivery(redis_client):
    # given an entry whose payload does not fit probe.ThingHappened v1, then a good event
    (good,) = _things(1)
    streams.ensure_groups()
    thing_event(good.pk)
    bad = {
        "id": "018f0000-0000-7000-8000-000000000001",
        "type": ThingHappened.name,
        "v": "1",
        "agg": "thing",
        "agg_id": "999",
        "agg_v": "1",
        "seq": "1",
        "at": "2026-12-01T00:00:00+00:00",
        "payload": '{"thing_id": 999, "step": "one"}',
        "headers": "{}",
    }
    redis_client.xadd(streams.stream_name(0), bad)
    from outbox.relay import relay_partition

    relay_partition(0)
    # when each group reads them once
    for group in GROUPS:
        result = consume(group, 0)
        # then the bad one is a dead letter at once, and the good one is applied in the same run
        assert (result.dead_lettered, result.handled) == (1, 1)
    for group in GROUPS:
        letter = DeadLetter.objects.get(group=group)
        assert letter.attempts == 0
        assert letter.reason.startswith("payload breaks the schema of probe.ThingHappened v1: step")
    assert not DeliveryFailure.objects.exists()
    assert applied_steps("probe-alpha", good.pk) == [1]


def test_a_schema_breaking_entry_does_not_hold_a_worker_s_group_back(settings, celery_worker):
    # given a worker whose retries would wait seconds (1 s, then 2, 4...)
    (thing,) = _things(1)
    celery_worker("w1", OUTBOX_RETRY_BACKOFF_S="1.0")
    wait_for(lambda: _all_held(1), timeout=30, message="every lease to be held")
    client = streams.get_redis()
    # when a schema-breaking entry arrives, then a good event right behind it
    client.xadd(
        streams.stream_name(0),
        {
            "id": "018f0000-0000-7000-8000-000000000002",
            "type": ThingHappened.name,
            "v": "1",
            "agg": "thing",
            "agg_id": "998",
            "agg_v": "1",
            "seq": "1",
            "at": "2026-12-01T00:00:00+00:00",
            "payload": '{"thing_id": "998", "step": 1}',
            "headers": "{}",
        },
    )
    started = time.monotonic()
    thing_event(thing.pk)
    # then the good one is applied by both groups long before a first retry could have run
    wait_for(lambda: Effect.objects.count() == 2, timeout=30)
    assert time.monotonic() - started < 3
    assert DeadLetter.objects.filter(attempts=0).count() == 2


def test_repartition_on_a_live_system_loses_and_reorders_nothing(settings, celery_worker):
    # given a worker on two partitions and events flowing
    settings.OUTBOX_PARTITIONS = 2
    things = _things(16)
    celery_worker("w1")
    wait_for(lambda: _all_held(2), timeout=30, message="every lease to be held")
    producers = _producing([t.pk for t in things], threads=2, events=120, pace_s=0.01)
    wait_for(lambda: Effect.objects.count() > 40, timeout=30, message="events to flow")
    # when the log goes to five partitions while they flow
    call_command("outbox_repartition", "5", "--timeout", "30")
    _join(*producers)
    # then every event is applied once per group, in each aggregate's order
    wait_for(lambda: Effect.objects.count() == 2 * 240, timeout=60, message="every event applied")
    _assert_each_group_applied_each_event_once_in_order(things)
    layout = layouts.current()
    assert (layout.partitions, layout.generation, layout.paused) == (5, 2, False)
    # and the readers work the new partitions
    wait_for(lambda: _all_held(5), timeout=10)


def test_repartition_refuses_in_one_line_while_an_entry_is_stuck_and_changes_nothing(
    settings, celery_worker
):
    # given a worker whose groups are stuck on an entry
    (thing,) = _things(1)
    celery_worker("w1")
    gate = AdvisoryLock(BLOCK_KEY)
    try:
        thing_event(thing.pk, kind="block")
        wait_for(lambda: len(lock_waiters(BLOCK_KEY)) == len(GROUPS), timeout=30)
        # when a repartition is asked for
        with pytest.raises(CommandError) as refused:
            call_command("outbox_repartition", "4", "--timeout", "2")
    finally:
        gate.release()
    # then it refuses in one line, and the layout and the relays are as they were
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("refused: group probe-")
    assert "in flight on partition 0" in message
    assert layouts.current().partitions == 1
    assert not layouts.current().paused
    thing_event(thing.pk)
    wait_for(lambda: Effect.objects.count() == 4, timeout=30, message="events to flow again")


def test_a_batch_waiting_for_a_lock_gives_way_without_a_failure_and_applies_once_it_is_free(
    celery_worker,
):
    # given a worker's readers, and a lock their handlers need, held elsewhere
    (thing,) = _things(1)
    celery_worker("w1")
    wait_for(lambda: _all_held(1), timeout=30, message="every lease to be held")
    lock = AdvisoryLock(BLOCK_KEY)
    try:
        # when an event needs it
        thing_event(thing.pk, kind="block")
        first = wait_for(lambda: lock_waits(BLOCK_KEY), timeout=30, message="a reader to wait")

        # then each wait is short (a lock held across partitions' batches would deadlock
        # them for PostgreSQL's deadlock_timeout): the reader gives way and waits anew,
        def waited_anew() -> bool:
            return any(
                pid == was_pid and started != was_started
                for pid, started in lock_waits(BLOCK_KEY)
                for was_pid, was_started in first
            )

        wait_for(waited_anew, timeout=10, message="a waiting reader to give way and try again")
        # and giving way is neither a counted failure nor a dead letter, nor applied
        assert not DeliveryFailure.objects.exists()
        assert not DeadLetter.objects.exists()
        assert not Effect.objects.exists()
    finally:
        lock.release()
    # then, with the lock free, each group applies the event once
    wait_for(lambda: Effect.objects.count() == len(GROUPS), timeout=30)
    for group in GROUPS:
        assert applied_steps(group, thing.pk) == [1]
    assert not DeliveryFailure.objects.exists()


def _lock_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        return cursor.fetchone()[0]


def test_waiting_for_a_lease_leaves_the_session_s_own_lock_timeout():
    # given a session with a lock_timeout of its own (as a reader's is), and a lease
    # that another session holds
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', '1234ms', false)")
    other = raw_connection()
    try:
        other.execute("SELECT pg_advisory_lock(%s, 0)", [lease.name_key("outbox.probe-wait")])
        # when it waits for the lease in vain, and then for a free one
        with lease.held("outbox.probe-wait", 0, wait_s=0.2) as got_held:
            assert got_held is False
        assert _lock_timeout() == "1234ms"
        with lease.held("outbox.probe-free", 0, wait_s=0.2) as got_free:
            assert got_free is True
    finally:
        other.close()
    # then its own lock_timeout is back each time
    assert _lock_timeout() == "1234ms"
