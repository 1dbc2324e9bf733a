"""The relay: moves committed outbox rows to Redis Streams, in order, at least once.

Per partition, one relay at a time holds the lease. It reads the oldest
unpublished rows (by status, never by "id greater than the last one seen": ids
are taken at insert but become visible at commit, so a slow transaction's lower
id would be skipped), appends them with one pipelined XADD round trip, then
marks them published. A crash between the two republishes the batch later;
consumers deduplicate.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from outbox import lease, streams
from outbox.doorbell import Doorbell
from outbox.message import encode_row

logger = logging.getLogger(__name__)

SELECT_BATCH = {
    "postgresql": (
        "SELECT id, event_id, event_type, version, aggregate_type, aggregate_id, "
        "aggregate_version, occurred_at, payload::text, headers::text FROM outbox_outboxevent "
        "WHERE partition = %s AND published_at IS NULL ORDER BY id LIMIT %s"
    ),
    "sqlite": (
        "SELECT id, event_id, event_type, version, aggregate_type, aggregate_id, "
        "aggregate_version, occurred_at, payload, headers FROM outbox_outboxevent "
        "WHERE partition = %s AND published_at IS NULL ORDER BY id LIMIT %s"
    ),
}
# The ids go as one array parameter (a JSON array on SQLite): one statement per batch.
MARK_PUBLISHED = {
    "postgresql": "UPDATE outbox_outboxevent SET published_at = %s, attempts = attempts + 1, "
    "last_error = '' WHERE id = ANY(%s)",
    "sqlite": "UPDATE outbox_outboxevent SET published_at = %s, attempts = attempts + 1, "
    "last_error = '' WHERE id IN (SELECT value FROM json_each(%s))",
}
MARK_FAILED = {
    "postgresql": "UPDATE outbox_outboxevent SET attempts = attempts + 1, last_error = %s "
    "WHERE id = ANY(%s)",
    "sqlite": "UPDATE outbox_outboxevent SET attempts = attempts + 1, last_error = %s "
    "WHERE id IN (SELECT value FROM json_each(%s))",
}


@dataclass
class RelayResult:
    published: int = 0
    batches: int = 0
    busy: bool = False  # another relay holds the partition's lease
    more: bool = False  # stopped by the time limit with rows left


def _mark(cursor, ids: list[int], *, error: str = "") -> None:
    vendor = connection.vendor
    param = ids if vendor == "postgresql" else json.dumps(ids)
    if error:
        cursor.execute(MARK_FAILED[vendor], [error[:2000], param])
    else:
        cursor.execute(MARK_PUBLISHED[vendor], [timezone.now(), param])


class MarkerLost(redis.RedisError):
    """The data-loss marker was missing or changed while a batch was prepared; nothing was sent."""


def relay_batch(
    partition: int, *, client: redis.Redis | None = None, batch_size: int | None = None
) -> list[str]:
    """Publish one batch of the partition's oldest unpublished events; returns their types.

    The caller holds the partition's relay lease. Raises ``MarkerLost``, having
    appended and marked nothing, when Redis lost its data (or a recovery re-set
    the marker) before the batch was appended: the caller recovers, then relays.
    """
    client = client or streams.get_redis()
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    stream = streams.stream_name(partition)
    marker = streams.marker_key()
    failure: redis.RedisError | None = None
    with transaction.atomic(), connection.cursor() as cursor, client.pipeline() as pipe:
        # Watched from before the SELECT, so the XADDs do not run if Redis loses its
        # data or a recovery republishes older events meanwhile: appended to a fresh
        # stream, newer events of an aggregate would overtake the republished ones.
        try:
            pipe.watch(marker)
            present = pipe.exists(marker)
        except redis.RedisError as exc:
            failure = exc
        else:
            if not present:
                raise MarkerLost(f"the marker {marker} is missing")
        cursor.execute(SELECT_BATCH[connection.vendor], [partition, batch_size])
        rows = cursor.fetchall()
        if not rows:
            if failure is not None:
                raise failure
            return []
        ids = [row[0] for row in rows]
        if failure is None:
            pipe.multi()
            for row in rows:
                pipe.xadd(stream, encode_row(row))
            try:
                pipe.execute()
            except redis.WatchError:
                raise MarkerLost(f"the marker {marker} changed") from None
            except redis.RedisError as exc:
                failure = exc
        if failure is not None:
            # Not marked published: the batch goes again on the next run.
            _mark(cursor, ids, error=f"{type(failure).__name__}: {failure}")
        else:
            _mark(cursor, ids)
    if failure is not None:
        logger.warning("relay: XADD to %s failed: %s", stream, failure)
        raise failure
    return [row[2] for row in rows]


def relay_partition(
    partition: int,
    *,
    client: redis.Redis | None = None,
    max_seconds: float = 5.0,
    batch_size: int | None = None,
    on_batch: Callable[[int, list[str]], None] | None = None,
) -> RelayResult:
    """Relay a partition until it is drained or ``max_seconds`` have passed.

    When Redis lost its data, it first republishes what the groups had not
    applied (``replay.recover_if_lost``), so that nothing newer overtakes it.
    """
    result = RelayResult()
    client = client or streams.get_redis()
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    deadline = time.monotonic() + max_seconds
    with lease.held("outbox.relay", partition) as got:
        if not got:
            result.busy = True
            return result
        Doorbell.relay(partition).clear(client)
        recoveries = 0
        while time.monotonic() < deadline:
            try:
                types = relay_batch(partition, client=client, batch_size=batch_size)
            except MarkerLost:
                # Redis lost its data: what the groups had not applied goes out
                # again first, then the newer events, in order.
                if recoveries == 3:
                    raise
                recoveries += 1
                from outbox.replay import recover_if_lost

                recover_if_lost()
                continue
            if not types:
                break
            result.published += len(types)
            result.batches += 1
            if on_batch is not None:
                on_batch(partition, types)
            if len(types) < batch_size:
                break
        else:
            result.more = True
    return result
