"""Redis Streams: names, the client, consumer groups and the data-loss marker."""

from __future__ import annotations

import functools
import logging
import uuid

import redis
from django.conf import settings

from outbox.registry import registry

logger = logging.getLogger(__name__)


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


def get_redis() -> redis.Redis:
    """The process's Redis client (a connection pool, safe to share between threads)."""
    return _client(settings.REDIS_URL)


def key(*parts: object) -> str:
    return ":".join([settings.OUTBOX_STREAM_PREFIX, *(str(p) for p in parts)])


def stream_name(partition: int) -> str:
    return key("events", partition)


def partitions() -> range:
    return range(settings.OUTBOX_PARTITIONS)


def marker_key() -> str:
    return key("marker")


def ensure_groups(client: redis.Redis | None = None) -> None:
    """Create every registered group on every partition stream, from the stream's start.

    Created at ``0`` with MKSTREAM, a group reads entries that were added before
    it existed; created at ``$`` it would skip them.
    """
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    for partition in partitions():
        for group in registry.groups:
            pipe.xgroup_create(stream_name(partition), group, id="0", mkstream=True)
    for result in pipe.execute(raise_on_error=False):
        if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
            raise result


def ensure_group(client: redis.Redis, group: str, partition: int) -> None:
    try:
        client.xgroup_create(stream_name(partition), group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def marker_present(client: redis.Redis | None = None) -> bool:
    return bool((client or get_redis()).exists(marker_key()))


def set_marker(client: redis.Redis | None = None) -> None:
    """Record that Redis holds the streams and groups the outbox set up.

    Redis here keeps nothing on disk: when it restarts empty, the marker is gone
    and the next check republishes what the groups had not yet applied.
    """
    (client or get_redis()).set(marker_key(), uuid.uuid4().hex)
