"""Housekeeping: trimming streams below what every group acknowledged, pruning the log."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from django.db import transaction
from django.utils import timezone

from outbox import streams
from outbox.models import DeliveryFailure, InboxEntry, OutboxEvent
from outbox.registry import registry

logger = logging.getLogger(__name__)


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def safe_trim_id(client: redis.Redis, partition: int) -> str | None:
    """The lowest entry id some group still needs; entries below it can go.

    For each registered group: its oldest pending entry if it has any, else the
    last entry delivered to it. None when a registered group is missing from the
    stream (it would need everything) or there is nothing to trim.
    """
    stream = streams.stream_name(partition)
    try:
        groups = {g["name"]: g for g in client.xinfo_groups(stream)}
    except redis.ResponseError:
        return None
    floor: str | None = None
    for name in registry.groups:
        group = groups.get(name)
        if group is None:
            return None
        if int(group["pending"]):
            needed = client.xpending(stream, name)["min"]
        else:
            needed = group["last-delivered-id"]
        if needed in (None, "0-0"):
            return None
        if floor is None or _id_tuple(needed) < _id_tuple(floor):
            floor = needed
    return floor


def trim_streams() -> int:
    """Trim every partition's stream below what every group has acknowledged."""
    client = streams.get_redis()
    removed = 0
    for partition in streams.partitions():
        floor = safe_trim_id(client, partition)
        if floor is not None:
            removed += client.xtrim(streams.stream_name(partition), minid=floor)
    return removed


def prune(*, retention_days: int, chunk: int = 5000) -> int:
    """Delete published events older than the retention, with their inbox rows; returns how many.

    Unpublished events are never pruned, whatever their age. Inbox rows go with
    their events (so none is left without its event), and in any case once they
    are older than the retention; delivery failures too. Works in chunks, so a
    long log does not make one long transaction.
    """
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = 0
    while True:
        rows = list(
            OutboxEvent.objects.filter(published_at__isnull=False, occurred_at__lt=cutoff)
            .order_by("id")
            .values_list("id", "event_id")[:chunk]
        )
        if not rows:
            break
        with transaction.atomic():
            InboxEntry.objects.filter(event_id__in=[event_id for _, event_id in rows]).delete()
            OutboxEvent.objects.filter(id__in=[pk for pk, _ in rows]).delete()
        deleted += len(rows)
    InboxEntry.objects.filter(processed_at__lt=cutoff).delete()
    DeliveryFailure.objects.filter(updated_at__lt=cutoff).delete()
    if deleted:
        logger.info("pruned %s published event(s) older than %s day(s)", deleted, retention_days)
    return deleted
