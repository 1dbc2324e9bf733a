"""Republishing from the outbox: the replay command and recovery from Redis data loss."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import redis
from django.db import connection, transaction
from django.db.models import QuerySet

from outbox import streams
from outbox.models import DeadLetter, InboxEntry, OutboxEvent
from outbox.registry import registry

logger = logging.getLogger(__name__)

CHUNK = 1000


@dataclass(frozen=True)
class ReplayFilter:
    since: datetime | None = None
    until: datetime | None = None
    event_type: str | None = None
    aggregate: str | None = None  # "type" or "type:id"
    group: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` with one readable line for a filter that cannot match."""
        if self.since and self.until and self.since > self.until:
            raise ValueError("--since is later than --until")
        if self.group is not None and self.group not in registry.groups:
            known = ", ".join(sorted(registry.groups)) or "none"
            raise ValueError(f"unknown consumer group {self.group!r} (known: {known})")


def select(flt: ReplayFilter) -> QuerySet[OutboxEvent]:
    """The events a filter matches, oldest first."""
    flt.validate()
    qs = OutboxEvent.objects.all()
    if flt.since:
        qs = qs.filter(occurred_at__gte=flt.since)
    if flt.until:
        qs = qs.filter(occurred_at__lte=flt.until)
    if flt.event_type:
        qs = qs.filter(event_type=flt.event_type)
    if flt.aggregate:
        agg_type, _, agg_id = flt.aggregate.partition(":")
        qs = qs.filter(aggregate_type=agg_type)
        if agg_id:
            qs = qs.filter(aggregate_id=agg_id)
    if flt.group:
        qs = qs.filter(event_type__in=registry.groups[flt.group].handlers.keys())
    return qs.order_by("id")


def replay(qs: QuerySet[OutboxEvent], *, progress: Callable[[int], None] | None = None) -> int:
    """Mark the events unpublished so the relay sends them again, in their original order.

    Consumers that applied them already skip them (their inbox has the event).
    """
    ids = list(qs.values_list("id", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        OutboxEvent.objects.filter(id__in=chunk).update(published_at=None)
        if progress:
            progress(len(chunk))
    if ids:
        _wake_relay()
    return len(ids)


def unapplied(group: str) -> QuerySet[OutboxEvent]:
    """Published events the group subscribes to but has neither applied nor dead-lettered.

    A discarded dead letter counts as dead-lettered: staff decided it is not to be applied.
    """
    types = registry.groups[group].handlers.keys()
    return (
        OutboxEvent.objects.filter(published_at__isnull=False, event_type__in=types)
        .exclude(event_id__in=InboxEntry.objects.filter(group=group).values("event_id"))
        .exclude(
            event_id__in=DeadLetter.objects.filter(
                group=group,
                status__in=[DeadLetter.Status.DEAD, DeadLetter.Status.DISCARDED],
                event_id__isnull=False,
            ).values("event_id")
        )
    )


def recover_if_lost(client: redis.Redis | None = None) -> int | None:
    """If Redis lost the outbox's data, rebuild groups and republish what is unapplied.

    Returns how many events were republished, or None when the marker is there.
    Safe to run from several processes at once: each step is idempotent.
    """
    client = client or streams.get_redis()
    if streams.marker_present(client):
        return None
    streams.ensure_groups(client)
    total = 0
    with transaction.atomic():
        for group in registry.groups:
            total += unapplied(group).update(published_at=None)
    streams.set_marker(client)
    logger.warning("Redis lost the outbox's streams: republishing %s unapplied event(s)", total)
    _wake_relay()
    return total


def _wake_relay() -> None:
    """Tell the relays that older events are unpublished again (they poll anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '*')", [streams.notify_channel()])
