"""Celery tasks: the relay, the consumers and housekeeping, all inside ``celery worker``.

Tasks are woken by doorbells: a Redis key set with NX by whoever has news (the
commit of an outbox row, a relayed batch), which sends one task only if none is
already queued. The task holding the lease clears the bell before it works and
looks at it again after releasing the lease, so a wake-up that arrives while it
works is never lost. The beat schedule polls everything every few seconds as a
safety net: no Celery message is the only record of anything.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from outbox import streams
from outbox.registry import registry

logger = logging.getLogger(__name__)

BELL_TTL_S = 30  # a bell whose task was lost stops blocking new wake-ups after this
ROUNDS = 20  # lease rounds per task before it hands over to a fresh task


def _ring(bell: str, task, kwargs: dict) -> None:
    if streams.get_redis().set(bell, 1, nx=True, ex=BELL_TTL_S):
        task.apply_async(kwargs=kwargs)


def wake_relay(partition: int) -> None:
    _ring(streams.key("bell", "relay", partition), relay_partition, {"partition": partition})


def wake_consumers(partition: int) -> None:
    """Ring every group's bell for a partition (one pipelined round trip)."""
    client = streams.get_redis()
    names = sorted(registry.groups)
    pipe = client.pipeline(transaction=False)
    for group in names:
        pipe.set(streams.key("bell", "consume", group, partition), 1, nx=True, ex=BELL_TTL_S)
    for group, rung in zip(names, pipe.execute(), strict=True):
        if rung:
            consume.apply_async(kwargs={"group": group, "partition": partition})


@shared_task(name="outbox.tasks.relay_partition")
def relay_partition(*, partition: int) -> int:
    """Relay one partition until drained; returns how many events it published."""
    from outbox.relay import relay_partition as run

    client = streams.get_redis()
    bell = streams.key("bell", "relay", partition)
    published = 0
    for _ in range(ROUNDS):
        result = run(partition, on_batch=wake_consumers)
        published += result.published
        if result.busy or not (result.more or client.exists(bell)):
            return published
    wake_relay(partition)
    return published


@shared_task(name="outbox.tasks.relay")
def relay() -> int:
    """The beat's poll: relay every partition (each one skipped if another relay holds it)."""
    from outbox.replay import recover_if_lost

    recover_if_lost()
    return sum(relay_partition(partition=p) for p in streams.partitions())


@shared_task(name="outbox.tasks.consume")
def consume(*, group: str, partition: int) -> int:
    """Apply a group's handlers to one partition until drained; returns how many were handled."""
    from outbox.consumer import consume as run

    if group not in registry.groups:
        logger.error("consume: unknown group %r, ignoring the task", group)
        return 0
    client = streams.get_redis()
    bell = streams.key("bell", "consume", group, partition)
    handled = 0
    for _ in range(ROUNDS):
        result = run(group, partition)
        handled += result.handled
        if result.retry_at is not None:
            delay = max((result.retry_at - timezone.now()).total_seconds(), 0.0)
            consume.apply_async(kwargs={"group": group, "partition": partition}, countdown=delay)
            return handled
        if result.busy or not (result.more or client.exists(bell)):
            return handled
    consume.apply_async(kwargs={"group": group, "partition": partition})
    return handled


@shared_task(name="outbox.tasks.consume_all")
def consume_all() -> None:
    """The beat's poll: one consume task per group and partition (skipped when one is queued)."""
    for partition in streams.partitions():
        wake_consumers(partition)


@shared_task(name="outbox.tasks.check_redis")
def check_redis() -> int | None:
    """Notice that Redis lost its data and republish what the groups have not applied."""
    from outbox.replay import recover_if_lost

    return recover_if_lost()


@shared_task(name="outbox.tasks.trim_streams")
def trim_streams() -> int:
    from outbox.maintenance import trim_streams as run

    return run()


@shared_task(name="outbox.tasks.prune")
def prune() -> int:
    from outbox.maintenance import prune as run

    return run(retention_days=settings.OUTBOX_RETENTION_DAYS)
