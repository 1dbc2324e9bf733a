"""Redis Streams: names, the client, consumer groups and the data-loss marker."""

from __future__ import annotations

import functools
import logging
import uuid

import redis

from outbox import layout
from outbox.conf import conf
from outbox.registry import registry

logger = logging.getLogger(__name__)

# The one consumer name every lease holder reads as: a (group, partition) has one
# holder at a time, and the next holder finds its predecessor's pending entries there.
CONSUMER = "holder"


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=5,
        # Longer than any XREADGROUP block: a server that vanished without closing the
        # connection surfaces as an error instead of a reader waiting forever.
        socket_timeout=15,
        socket_keepalive=True,
    )


def get_redis() -> redis.Redis:
    """The process's Redis client (a connection pool, safe to share between threads)."""
    return _client(conf.redis_url())


def key(*parts: object) -> str:
    return ":".join([conf.STREAM_PREFIX, *(str(p) for p in parts)])


def stream_name(partition: int) -> str:
    return key("events", partition)


def partition_of_stream(name: str) -> int:
    return int(name.rpartition(":")[2])


def partitions() -> range:
    """The partitions of the current layout (read from the database)."""
    return layout.current().range()


def marker_key() -> str:
    return key("marker")


def notify_channel() -> str:
    """The PostgreSQL NOTIFY channel on which commits that published wake the relays."""
    return key("relay")


def ensure_groups(client: redis.Redis | None = None, parts: range | None = None) -> None:
    """Create every registered group on every partition stream, from the stream's start.

    Created at ``0`` with MKSTREAM, a group reads entries that were added before
    it existed; created at ``$`` it would skip them.
    """
    client = client or get_redis()
    pipe = client.pipeline(transaction=False)
    for partition in parts if parts is not None else partitions():
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
    and the next relay batch republishes what the groups had not yet applied.
    """
    (client or get_redis()).set(marker_key(), uuid.uuid4().hex)
