"""Celery tasks: the relay, the consumers and housekeeping, all inside ``celery worker``.

Tasks are woken by doorbells (``outbox.doorbell``): a commit that published
rings its partition's relay, a relayed batch rings the groups subscribed to
what it carried. The beat schedule polls everything every few seconds as a
safety net: no Celery message is the only record of anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from outbox import streams
from outbox.doorbell import Doorbell, ring
from outbox.registry import registry

logger = logging.getLogger(__name__)

# How long one task works before it re-queues itself (at the back of the queue), so
# that one busy group or partition does not keep the pool from the others.
SLICE_S = 0.5


def wake_relay(partition: int) -> None:
    ring(
        streams.get_redis(),
        [
            (
                Doorbell.relay(partition),
                lambda: relay_partition.apply_async(kwargs={"partition": partition}),
            )
        ],
    )


def wake_consumers(partition: int, event_types: Iterable[str] | None = None) -> None:
    """Ring the bells of the groups subscribed to ``event_types`` (every group if None).

    Groups subscribed to none of them are not woken: they acknowledge such
    entries on their next run or beat's poll.
    """
    types = None if event_types is None else set(event_types)
    groups = [
        name
        for name, group in sorted(registry.groups.items())
        if types is None or not types.isdisjoint(group.handlers)
    ]
    ring(
        streams.get_redis(),
        [
            (
                Doorbell.consumer(group, partition),
                lambda group=group: consume.apply_async(
                    kwargs={"group": group, "partition": partition}
                ),
            )
            for group in groups
        ],
    )


@shared_task(name="outbox.tasks.relay_partition")
def relay_partition(*, partition: int) -> int:
    """Relay one partition for a slice of time (re-queued while more remain); returns how many."""
    from outbox.relay import relay_partition as run

    client = streams.get_redis()
    bell = Doorbell.relay(partition)
    published = 0
    deadline = time.monotonic() + SLICE_S
    while time.monotonic() < deadline:
        result = run(partition, on_batch=wake_consumers, max_seconds=SLICE_S)
        published += result.published
        if result.busy:
            return published  # the holder looks at the bell when it finishes
        if not result.more and not bell.done(client):
            return published
    relay_partition.apply_async(kwargs={"partition": partition})
    return published


@shared_task(name="outbox.tasks.relay")
def relay() -> int:
    """The beat's poll: relay every partition (each one skipped if another relay holds it).

    A relay run is also what notices that Redis lost its data (the marker is gone)
    and republishes what the groups had not applied, before anything newer.
    """
    return sum(relay_partition(partition=p) for p in streams.partitions())


@shared_task(name="outbox.tasks.consume")
def consume(*, group: str, partition: int) -> int:
    """Apply a group's handlers to one partition for a slice (re-queued while more remain)."""
    from outbox.consumer import consume as run

    if group not in registry.groups:
        logger.error("consume: unknown group %r, ignoring the task", group)
        return 0
    client = streams.get_redis()
    bell = Doorbell.consumer(group, partition)
    handled = 0
    deadline = time.monotonic() + SLICE_S
    while time.monotonic() < deadline:
        result = run(group, partition, max_seconds=SLICE_S)
        handled += result.handled
        if result.busy:
            return handled  # the holder looks at the bell when it finishes
        if result.retry_at is not None:
            # The partition waits for a failed entry's backoff; the bell stays
            # "queued" meanwhile, so rings do not send tasks that would only wait too.
            delay = max((result.retry_at - timezone.now()).total_seconds(), 0.0)
            consume.apply_async(kwargs={"group": group, "partition": partition}, countdown=delay)
            return handled
        if not result.more and not bell.done(client):
            return handled
    consume.apply_async(kwargs={"group": group, "partition": partition})
    return handled


@shared_task(name="outbox.tasks.consume_all")
def consume_all() -> None:
    """The beat's poll: one consume task per group and partition, whatever the bells say."""
    for partition in streams.partitions():
        for group in sorted(registry.groups):
            consume.apply_async(kwargs={"group": group, "partition": partition})


@shared_task(name="outbox.tasks.trim_streams")
def trim_streams() -> int:
    from outbox.maintenance import trim_streams as run

    return run()


@shared_task(name="outbox.tasks.prune")
def prune() -> int:
    from outbox.maintenance import prune as run

    return run(retention_days=settings.OUTBOX_RETENTION_DAYS)
