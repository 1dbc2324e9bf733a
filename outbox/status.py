"""How far behind the outbox is: what ``outbox_status`` and the staff API report."""

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


def _group_info(client: redis.Redis, partition: int) -> dict[str, dict[str, Any]]:
    try:
        return {g["name"]: g for g in client.xinfo_groups(streams.stream_name(partition))}
    except redis.ResponseError:  # no such stream yet
        return {}


def status() -> dict[str, Any]:
    """Unpublished count and age, dead letters, and per group its pending count and lag.

    Then whatever the callables named in ``OUTBOX_STATUS_HOOKS`` (dotted paths)
    return, merged in: the project's own figures, such as its stuck work.
    """
    unpublished = OutboxEvent.objects.filter(published_at__isnull=True)
    oldest = unpublished.aggregate(oldest=Min("occurred_at"))["oldest"]
    client = streams.get_redis()
    groups: dict[str, dict[str, Any]] = {
        name: {"pending": 0, "lag": 0, "dead_letters": 0} for name in sorted(registry.groups)
    }
    redis_ok = True
    try:
        for partition in streams.partitions():
            info = _group_info(client, partition)
            length = client.xlen(streams.stream_name(partition))
            for name, row in groups.items():
                group = info.get(name)
                if group is None:
                    # The group does not exist yet: everything in the stream is ahead of it.
                    row["lag"] += length
                    continue
                row["pending"] += int(group.get("pending") or 0)
                lag = group.get("lag")
                row["lag"] += int(lag) if lag is not None else length
        marker = streams.marker_present(client)
    except redis.RedisError:
        redis_ok, marker = False, False
    for name, count in _dead_letter_counts().items():
        if name in groups:
            groups[name]["dead_letters"] = count
    report: dict[str, Any] = {}
    for path in conf.STATUS_HOOKS:
        report.update(import_string(path)())
    return report | {
        "unpublished": unpublished.count(),
        "oldest_unpublished_age_s": (
            round((timezone.now() - oldest).total_seconds(), 3) if oldest else 0.0
        ),
        "published": OutboxEvent.objects.filter(published_at__isnull=False).count(),
        "dead_letters": DeadLetter.objects.filter(status=DeadLetter.Status.DEAD).count(),
        "partitions": len(streams.partitions()),
        "redis": "ok" if redis_ok else "unreachable",
        "redis_marker": marker,
        "groups": groups,
    }


def _dead_letter_counts() -> dict[str, int]:
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
        .values("group")
        .annotate(n=Count("id"))
        .values_list("group", "n")
    )
    return dict(rows)
