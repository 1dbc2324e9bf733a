"""Changing the number of partitions on a live system without losing or reordering events.

An aggregate's events are stamped with a fixed slot when they are published; the
partition (a range of slots) is worked out when they are relayed. So the
count only has to change between two relay batches at which every stream is
fully consumed:

1. pause the relays (``StreamLayout.paused``; the readers give their relay
   leases up within a second) and take every relay lease, so none runs;
2. wait until every group has applied and acknowledged everything already in
   the streams (commits go on meanwhile: their events wait, unpublished);
3. record the new count with a new generation, unpause, give the leases back.

Readers see the new generation at their next look and start over with the new
partitions; the events that waited are relayed onto them. If step 1 or 2 does
not finish in time, nothing changes and the relays resume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from django.db import connection, transaction

from outbox import layout as layouts
from outbox import lease, streams
from outbox.layout import SLOT_COUNT
from outbox.models import StreamLayout
from outbox.registry import registry
from outbox.relay import RELAY_LEASE


class Refused(Exception):
    """The change cannot be made now; nothing was changed. The message says why, in one line."""


@dataclass(frozen=True)
class InFlight:
    group: str
    partition: int
    lag: int
    pending: int

    def __str__(self) -> str:
        return (
            f"group {self.group} has {self.lag + self.pending} entr(ies) in flight on "
            f"partition {self.partition} ({self.lag} not yet read, {self.pending} unacknowledged)"
        )


def in_flight(partitions: range, client: redis.Redis | None = None) -> list[InFlight]:
    """What some group has not yet applied and acknowledged on the given partitions."""
    client = client or streams.get_redis()
    found = []
    for partition in partitions:
        name = streams.stream_name(partition)
        try:
            info = {g["name"]: g for g in client.xinfo_groups(name)}
            last = client.xinfo_stream(name)["last-generated-id"]
        except redis.ResponseError:  # no such stream: nothing in flight there
            continue
        for group in sorted(registry.groups):
            row = info.get(group)
            if row is None:
                length = int(client.xlen(name))
                if length:
                    found.append(InFlight(group, partition, length, 0))
                continue
            lag = row.get("lag")
            if lag is None:  # Redis cannot tell (entries deleted): compare the ids
                lag = 0 if row["last-delivered-id"] == last else 1
            pending = int(row.get("pending") or 0)
            if int(lag) or pending:
                found.append(InFlight(group, partition, int(lag), pending))
    return found


def _set_paused(prefix: str, paused: bool) -> None:
    StreamLayout.objects.filter(prefix=prefix).update(paused=paused)


def repartition(partitions: int, *, timeout_s: float = 60.0) -> layouts.Layout:
    """Change the event log to ``partitions`` partitions; returns the new layout.

    Must run outside a transaction (it holds session leases). Raises ``Refused``
    when the relays do not pause or the streams do not drain within
    ``timeout_s``, having changed nothing.
    """
    if not 1 <= partitions <= SLOT_COUNT:
        raise Refused(f"the number of partitions must be 1..{SLOT_COUNT}, not {partitions}")
    if connection.in_atomic_block:
        raise Refused("run it outside a transaction")
    current = layouts.current()
    if current.paused:
        raise Refused("another repartition is under way (the relays are paused)")
    if partitions == current.partitions:
        return current
    deadline = time.monotonic() + timeout_s
    client = streams.get_redis()
    _set_paused(current.prefix, True)
    leases = lease.LeaseSet(RELAY_LEASE)
    try:
        for partition in range(max(current.partitions, partitions)):
            if not _acquire(leases, partition, deadline):
                raise Refused(
                    f"the relay of partition {partition} did not pause within {timeout_s:g} s"
                )
        while True:
            waiting = in_flight(current.range(), client)
            if not waiting:
                break
            if time.monotonic() > deadline:
                more = f" (and {len(waiting) - 1} more)" if len(waiting) > 1 else ""
                raise Refused(f"{waiting[0]}{more} after {timeout_s:g} s; nothing changed")
            time.sleep(0.2)
        streams.ensure_groups(client, range(partitions))
        with transaction.atomic():
            row = StreamLayout.objects.select_for_update().get(prefix=current.prefix)
            row.partitions = partitions
            row.generation = current.generation + 1
            row.paused = False
            row.save(update_fields=["partitions", "generation", "paused", "updated_at"])
        # The streams beyond the new count are fully consumed: nothing reads them again.
        gone = [streams.stream_name(p) for p in range(partitions, current.partitions)]
        if gone:
            client.delete(*gone)
    finally:
        for partition in sorted(leases.held):
            leases.release(partition)
        if layouts.current().paused:
            _set_paused(current.prefix, False)
    _notify_relays()
    return layouts.current()


def _acquire(leases: lease.LeaseSet, partition: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if leases.try_acquire(partition):
            return True
        time.sleep(0.1)
    return False


def _notify_relays() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '*')", [streams.notify_channel()])
