"""Leases: at most one process at a time relays, or consumes for a group, on a partition.

A lease is a PostgreSQL advisory lock on the holder's database session. A
process that dies loses its session and with it the lease, at once, so the next
process takes over without waiting for a timeout. SQLite has no such locks; it
is for one machine and one worker process, and there a lease always holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import OperationalError, connection

# The advisory locks of this database with two int4 keys (classid, objid): the leases.
TAKEN = (
    "SELECT classid::bigint, objid::int FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid::bigint = ANY(%s) "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
SURVEY = (
    "WITH l AS (SELECT classid::bigint AS k1, objid::int AS partition, granted FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 2 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) "
    "SELECT (SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
    "AND datname = current_database()), "
    "ARRAY(SELECT partition FROM l WHERE granted AND k1 = %s), "
    "ARRAY(SELECT partition FROM l WHERE NOT granted AND k1 = %s)"
)


def name_key(name: str) -> int:
    """The first of a lease's two int4 keys: a stable hash of its name, signed as PostgreSQL wants."""
    digest = zlib.crc32(name.encode())
    return digest - (1 << 32) if digest >= (1 << 31) else digest


def supported() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def held(name: str, partition: int, *, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the lease ``name`` on ``partition`` for the block; yields whether it was got.

    With ``wait_s`` 0 it does not wait; otherwise it waits up to that long (a
    reader in a worker that holds it gives it up within about a second when it
    sees someone waiting). Must be entered outside a transaction: the lock
    belongs to the session.
    """
    if not supported():
        yield True
        return
    k1 = name_key(name)
    with connection.cursor() as cursor:
        if wait_s > 0:
            # The wait's own limit, then the session's again (a reader's, say, is not 0).
            cursor.execute("SELECT current_setting('lock_timeout')")
            before = cursor.fetchone()[0]
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false)", [f"{int(wait_s * 1000)}ms"]
            )
            try:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [k1, partition])
                got = True
            except OperationalError as exc:
                if "lock timeout" not in str(exc):
                    raise
                got = False
            finally:
                cursor.execute("SELECT set_config('lock_timeout', %s, false)", [before])
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [k1, partition])
            got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [k1, partition])


def taken(names: Iterable[str]) -> set[tuple[str, int]]:
    """Which (lease name, partition) pairs some session holds right now."""
    by_key = {name_key(name) & 0xFFFFFFFF: name for name in names}
    if not supported() or not by_key:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(TAKEN, [list(by_key)])
        return {(by_key[k1], int(k2)) for k1, k2 in cursor.fetchall()}


@dataclass
class Survey:
    """What a lease holder sees of its lease name: who else is there and what they want."""

    members: int  # sessions that read under this name (``application_name``), itself included
    taken: set[int] = field(default_factory=set)  # partitions some session holds
    wanted: set[int] = field(default_factory=set)  # partitions some session waits for


class LeaseSet:
    """The leases of one name that one reader thread holds, on its own database session.

    Not thread-safe: one thread, one session, one ``LeaseSet``.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.k1 = name_key(name)
        self.held: set[int] = set()

    def survey(self, application_name: str) -> Survey:
        """One round trip: how many readers share the name, and the state of its locks."""
        if not supported():
            return Survey(members=1)
        with connection.cursor() as cursor:
            unsigned = self.k1 & 0xFFFFFFFF  # pg_locks shows the key as an oid
            cursor.execute(SURVEY, [application_name, unsigned, unsigned])
            members, taken_, wanted = cursor.fetchone()
        return Survey(members=int(members), taken=set(taken_), wanted=set(wanted))

    def try_acquire(self, partition: int) -> bool:
        if supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [self.k1, partition])
                if not cursor.fetchone()[0]:
                    return False
        self.held.add(partition)
        return True

    def release(self, partition: int) -> None:
        self.held.discard(partition)
        if supported():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [self.k1, partition])

    def forget(self) -> None:
        """The session is gone, and the server released its locks with it."""
        self.held.clear()
