"""How far behind the outbox is: what ``outbox_status``, the staff API, metrics and readiness report.

``group_positions`` and ``oldest_unpublished_age_s`` are the two measures every
report shares; ``backlog`` is what is read at each metrics scrape (nothing that
counts the whole log); ``status`` adds the rest for people.
"""

from __future__ import annotations

from typing import Any

import redis
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.module_loading import import_string

from outbox import streams
from outbox.conf import conf
from outbox.models import DeadLetter, OutboxEvent
from outbox.registry import registry


def group_positions(client: redis.Redis) -> dict[str, dict[str, int]]:
    """Per group, over every partition: ``pending`` (read, not acknowledged) and ``lag``
    (not read yet). Raises ``redis.RedisError`` when Redis does not answer."""
    groups = {name: {"pending": 0, "lag": 0} for name in sorted(registry.groups)}
    for partition in streams.partitions():
        stream = streams.stream_name(partition)
        try:
            info = {g["name"]: g for g in client.xinfo_groups(stream)}
        except redis.ResponseError:  # no such stream yet: nothing to read
            continue
        length = None
        for name, row in groups.items():
            group = info.get(name) or {}
            row["pending"] += int(group.get("pending") or 0)
            lag = group.get("lag")
            if lag is None:  # no group yet, or Redis cannot tell: the whole stream is ahead
                length = client.xlen(stream) if length is None else length
                lag = length
            row["lag"] += int(lag)
    return groups


def oldest_unpublished_age_s() -> float:
    """How long the oldest committed event has waited for the relay (0 when none waits)."""
    oldest = OutboxEvent.objects.filter(published_at__isnull=True).aggregate(
        oldest=Min("occurred_at")
    )["oldest"]
    return round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0.0


def backlog() -> dict[str, Any]:
    """Unpublished count and age, open dead letters, Redis, and each group's position."""
    client = streams.get_redis()
    try:
        positions = group_positions(client)
        marker, redis_ok = streams.marker_present(client), True
    except redis.RedisError:
        positions = {name: {"pending": 0, "lag": 0} for name in sorted(registry.groups)}
        marker, redis_ok = False, False
    dead = _dead_letter_counts()
    groups = {name: {**row, "dead_letters": dead.get(name, 0)} for name, row in positions.items()}
    return {
        "unpublished": OutboxEvent.objects.filter(published_at__isnull=True).count(),
        "oldest_unpublished_age_s": oldest_unpublished_age_s(),
        "dead_letters": sum(dead.values()),
        "redis": "ok" if redis_ok else "unreachable",
        "redis_marker": marker,
        "groups": groups,
    }


def status() -> dict[str, Any]:
    """``backlog()``, the published count and the partitions, for people.

    Then whatever the callables named in ``OUTBOX_STATUS_HOOKS`` (dotted paths)
    return, merged in: the project's own figures, such as its stuck work.
    """
    report: dict[str, Any] = {}
    for path in conf.STATUS_HOOKS:
        report.update(import_string(path)())
    return report | {
        **backlog(),
        "published": OutboxEvent.objects.filter(published_at__isnull=False).count(),
        "partitions": len(streams.partitions()),
    }


def _dead_letter_counts() -> dict[str, int]:
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
        .values("group")
        .annotate(n=Count("id"))
        .values_list("group", "n")
    )
    return dict(rows)
