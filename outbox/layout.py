"""The event log's layout: which partition (stream) an aggregate's events travel on.

Every event is stamped at publish time with its aggregate's *slot*, a fixed hash
in ``0..SLOT_COUNT-1``. A partition is a contiguous range of slots (with 8
partitions, slots 0-511 are partition 0), where the number of partitions is kept
in the database (``StreamLayout``), seeded from ``OUTBOX_PARTITIONS``. Ranges,
not ``slot % partitions``: PostgreSQL estimates a range from its statistics, so
the relay's SELECT walks the index of unpublished rows whatever the backlog. Publishers therefore never need the partition count, and
changing it (``outbox_repartition``) only has to agree among relays and
consumers: relays pause, the streams drain, the count changes, relays resume.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

from django.db import connection

from outbox.conf import conf
from outbox.models import StreamLayout

SLOT_COUNT = 4096  # fixed forever: also the largest possible number of partitions


def slot_for(aggregate_type: str, aggregate_id: str) -> int:
    """The aggregate's slot: stable across processes, hosts and restarts."""
    return zlib.crc32(f"{aggregate_type}:{aggregate_id}".encode()) % SLOT_COUNT


@dataclass(frozen=True)
class Layout:
    prefix: str
    partitions: int
    generation: int
    paused: bool = False

    def partition_of(self, slot: int) -> int:
        return slot * self.partitions // SLOT_COUNT

    def slots(self, partition: int) -> tuple[int, int]:
        """The partition's slots: ``low <= slot < high``."""
        return (
            -(-partition * SLOT_COUNT // self.partitions),
            -(-(partition + 1) * SLOT_COUNT // self.partitions),
        )

    def partition_for(self, aggregate_type: str, aggregate_id: str) -> int:
        return self.partition_of(slot_for(aggregate_type, aggregate_id))

    def range(self) -> range:
        return range(self.partitions)


def current() -> Layout:
    """The layout under the configured key prefix, created from the settings on first use."""
    prefix = conf.STREAM_PREFIX
    # Every reader asks once a second: a plain statement, not a queryset compiled each time.
    with connection.cursor() as cursor:
        cursor.execute(_current_sql(), [prefix])
        found = cursor.fetchone()
    if found is not None:
        partitions, generation, paused = found
        return Layout(prefix, partitions, generation, bool(paused))
    partitions = int(conf.PARTITIONS)
    if not 1 <= partitions <= SLOT_COUNT:
        from outbox.errors import ConfigurationError

        raise ConfigurationError(f"OUTBOX_PARTITIONS must be 1..{SLOT_COUNT}, not {partitions}")
    row, _ = StreamLayout.objects.get_or_create(prefix=prefix, defaults={"partitions": partitions})
    return Layout(row.prefix, row.partitions, row.generation, row.paused)


@functools.cache
def _current_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in ("partitions", "generation", "paused"))
    return (
        f"SELECT {columns} FROM {quote(StreamLayout._meta.db_table)} WHERE {quote('prefix')} = %s"  # noqa: S608
    )
