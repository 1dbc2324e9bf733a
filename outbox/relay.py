"""The relay: moves committed outbox rows to Redis Streams, in order, at least once.

Per partition, one relay at a time holds the lease. It reads the oldest
unpublished rows (by status, never by "id greater than the last one seen": ids
are taken at insert but become visible at commit, so a slow transaction's lower
id would be skipped), appends them with one pipelined XADD round trip, then
marks them published. A crash between the two republishes the batch later;
consumers deduplicate.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis
from django.db import connection
from django.utils import timezone

from outbox import layout as layouts
from outbox import lease, metrics, streams
from outbox.conf import conf
from outbox.layout import Layout
from outbox.message import encode_row

logger = logging.getLogger(__name__)

RELAY_LEASE = "outbox.relay"

# The oldest unpublished rows of some partitions, with their slot, if the layout the
# caller read is still the current one (after outbox_repartition an older reader gets
# nothing and reads it again). A partition is a range of slots, and the partitions
# asked for are ranges of slots too (next partitions make one): on ranges of a
# plain column PostgreSQL estimates how many rows match and walks the index of
# unpublished rows in id order; on an expression of the slot it guesses, and with
# a small table picks a sequential scan and a sort for every batch.
_SELECT = (
    "SELECT id, event_id, event_type, version, aggregate_type, aggregate_id, "
    "aggregate_version, occurred_at, {payload}, {headers}, slot FROM outbox_outboxevent "
    "WHERE published_at IS NULL AND ({ranges}) "
    "AND (SELECT generation FROM outbox_streamlayout WHERE prefix = %s) = %s "
    "ORDER BY id LIMIT %s"
)
_COLUMNS = {
    "postgresql": {"payload": "payload::text", "headers": "headers::text"},
    "sqlite": {"payload": "payload", "headers": "headers"},
}


@functools.cache
def _select_batch(vendor: str, ranges: int) -> str:
    return _SELECT.format(
        ranges=" OR ".join(["(slot >= %s AND slot < %s)"] * ranges), **_COLUMNS[vendor]
    )


def batch_query(
    layout: Layout, partitions: Iterable[int], batch_size: int, vendor: str = "postgresql"
) -> tuple[str, list]:
    """The relay's SELECT of a batch of some partitions of ``layout``, and its parameters."""
    ranges: list[list[int]] = []
    for partition in sorted(set(partitions)):
        low, high = layout.slots(partition)
        if ranges and ranges[-1][1] == low:
            ranges[-1][1] = high
        else:
            ranges.append([low, high])
    params: list = [bound for pair in ranges for bound in pair]
    params += [layout.prefix, layout.generation, batch_size]
    return _select_batch(vendor, len(ranges)), params


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
    sql = MARK_FAILED[vendor] if error else MARK_PUBLISHED[vendor]
    first = error[:2000] if error else timezone.now()
    if vendor != "postgresql":
        cursor.execute(sql, [first, json.dumps(ids)])
        return
    # Planned each time, never prepared: a generic plan made while the table was
    # small (a new deployment's first minutes) scans the whole table for these ids,
    # and keeps doing so as it grows, until an ANALYZE happens to replace it.
    with connection.wrap_database_errors:
        cursor.cursor.execute(sql, [first, ids], prepare=False)


class MarkerLost(redis.RedisError):
    """The data-loss marker was missing or changed while a batch was prepared; nothing was sent."""


# Appends a batch only if the marker still holds the value the relay read before its
# SELECT: if Redis lost its data, or a recovery republished older events, meanwhile,
# nothing is appended (newer events of an aggregate would overtake the republished
# ones on a fresh stream). One round trip for the check and the whole batch, which
# travels as one JSON argument: a list of entries, each the index in KEYS of its
# stream, then its fields and values in turn (one argument to pack instead of twenty
# for each entry).
# KEYS: marker, then the streams. ARGV: the marker's value, the batch.
APPEND_IF_MARKED = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local entries = cjson.decode(ARGV[2])
for _, entry in ipairs(entries) do
  redis.call('XADD', KEYS[entry[1]], '*', unpack(entry, 2))
end
return #entries
"""

_markers: dict[str, str] = {}  # the marker value each key had when this process last read it


def _marker_value(client: redis.Redis, key: str, *, refresh: bool = False) -> str:
    value = None if refresh else _markers.get(key)
    if value is None:
        stored = client.get(key)
        if stored is None:
            raise MarkerLost(f"the marker {key} is missing")
        value = str(stored)
        _markers[key] = value
    return value


def relay_batch(
    partitions: int | Sequence[int],
    *,
    layout: Layout,
    client: redis.Redis | None = None,
    batch_size: int | None = None,
) -> int:
    """Publish one batch of the oldest unpublished events of some partitions; returns how many.

    The caller holds the partitions' relay leases. Each partition's events go
    to its stream in order. Returns 0 when there is nothing to send or
    ``layout`` is no longer current. Raises ``MarkerLost``, having appended and
    marked nothing, when Redis lost its data (or a recovery re-set the marker)
    since the marker was last read: the caller recovers, then relays. Raises the
    Redis error, having marked the rows' attempt, when the XADDs failed.
    """
    wanted = [partitions] if isinstance(partitions, int) else list(partitions)
    client = client or streams.get_redis()
    batch_size = batch_size or conf.RELAY_BATCH_SIZE
    marker = streams.marker_key()
    failure: redis.RedisError | None = None
    started = time.perf_counter()
    vendor = connection.vendor
    # No transaction: the lease makes this the partition's only relay, the SELECT and
    # the UPDATE are a statement each, and a crash between them republishes (as one
    # between the XADD and a commit would). Two round trips (BEGIN, COMMIT) less a batch.
    with connection.cursor() as cursor:
        try:
            expected = _marker_value(client, marker)  # read before the SELECT, see above
        except MarkerLost:
            raise  # (a RedisError too, but not a failure to reach Redis)
        except redis.RedisError as exc:
            failure, expected = exc, ""
        cursor.execute(*batch_query(layout, wanted, batch_size, vendor))
        rows = cursor.fetchall()
        if not rows:
            if failure is not None:
                raise failure
            # Idle: still notice a Redis that lost its data (pending work to republish).
            if _marker_value(client, marker, refresh=True) != expected:
                raise MarkerLost(f"the marker {marker} changed")
            return 0
        ids = [row[0] for row in rows]
        if failure is None:
            keys = [marker]
            key_of: dict[int, int] = {}  # partition -> its stream's index in keys (from 1)
            batch = []
            for row in rows:
                partition = layout.partition_of(row[-1])
                key = key_of.get(partition)
                if key is None:
                    keys.append(streams.stream_name(partition))
                    key = key_of[partition] = len(keys)
                entry: list[str | int] = [key]
                for name, value in encode_row(row[:-1]).items():
                    entry += [name, str(value)]
                batch.append(entry)
            try:
                appended = _append(client, keys, [expected, json.dumps(batch, ensure_ascii=False)])
            except redis.RedisError as exc:
                failure = exc
            else:
                if appended == -1:
                    _markers.pop(marker, None)
                    raise MarkerLost(f"the marker {marker} changed")
        if failure is not None:
            # Not marked published: the batch goes again on the next run.
            _mark(cursor, ids, error=f"{type(failure).__name__}: {failure}")
        else:
            _mark(cursor, ids)
    if failure is not None:
        names = ", ".join(streams.stream_name(partition) for partition in wanted)
        logger.warning("relay: XADD to %s failed: %s", names, failure)
        raise failure
    metrics.RELAY_BATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.RELAY_BATCH_SIZE.observe(len(rows))
    for event_type, count in Counter(row[2] for row in rows).items():
        metrics.RELAYED.labels(event_type).inc(count)
    return len(rows)


_script: list = []  # the registered APPEND_IF_MARKED (its SHA), made on first use


def _append(client: redis.Redis, keys: list[str], args: list) -> int:
    """Run APPEND_IF_MARKED (EVALSHA, loading it again after a Redis restart)."""
    if not _script:
        _script.append(client.register_script(APPEND_IF_MARKED))
    return _script[0](keys=keys, args=args, client=client)


def relay_held(
    partitions: int | Sequence[int],
    *,
    layout: Layout,
    client: redis.Redis | None = None,
    max_seconds: float = 5.0,
    batch_size: int | None = None,
    max_batches: int | None = None,
) -> RelayResult:
    """Relay partitions whose leases the caller holds, until drained or out of time.

    ``more`` says that time (or ``max_batches`` full batches) ran out first.
    When Redis lost its data, it first republishes what the groups had not
    applied (``replay.recover_if_lost``), so that nothing newer overtakes it.
    """
    from outbox.replay import recover_if_lost

    result = RelayResult()
    client = client or streams.get_redis()
    batch_size = batch_size or conf.RELAY_BATCH_SIZE
    deadline = time.monotonic() + max_seconds
    recoveries = 0
    while time.monotonic() < deadline:
        try:
            sent = relay_batch(partitions, layout=layout, client=client, batch_size=batch_size)
        except MarkerLost:
            # Redis lost its data: what the groups had not applied goes out
            # again first, then the newer events, in order.
            if recoveries == 3:
                raise
            recoveries += 1
            recover_if_lost(client)
            continue
        if not sent:
            break
        result.published += sent
        result.batches += 1
        if sent < batch_size:
            break
        if result.batches == max_batches:
            result.more = True
            break
    else:
        result.more = True
    return result


def relay_partition(
    partition: int,
    *,
    client: redis.Redis | None = None,
    max_seconds: float = 5.0,
    batch_size: int | None = None,
) -> RelayResult:
    """Take the partition's relay lease if it is free, relay it, and give the lease back.

    For one-off runs (the beat's poll, ``outbox_relay --once``, tests); the
    readers inside the worker hold their leases for as long as they live.
    """
    with lease.held(RELAY_LEASE, partition) as got:
        if not got:
            return RelayResult(busy=True)
        return relay_held(
            partition,
            layout=layouts.current(),
            client=client,
            max_seconds=max_seconds,
            batch_size=batch_size,
        )
