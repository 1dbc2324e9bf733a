"""Leases: at most one process at a time relays, or consumes for a group, on a partition.

A lease is a PostgreSQL advisory lock on the process's database connection. A
process that dies loses its connection and with it the lease, at once, so the
next process takes over without waiting for a timeout. SQLite has no such
locks; it is for one machine and one worker, and there the lease always holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection


def _keys(name: str, partition: int) -> tuple[int, int]:
    # Two int4 keys: a stable hash of the name (signed, as PostgreSQL wants) and the partition.
    digest = zlib.crc32(name.encode())
    return (digest - (1 << 32) if digest >= (1 << 31) else digest), partition


@contextmanager
def held(name: str, partition: int, *, wait_s: float = 0.0) -> Iterator[bool]:
    """Hold the lease ``name`` on ``partition`` for the block; yields whether it was got.

    With ``wait_s`` 0 it does not wait; otherwise it waits up to that long.
    Must be entered outside a transaction: the lock belongs to the session.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    k1, k2 = _keys(name, partition)
    with connection.cursor() as cursor:
        if wait_s > 0:
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false)", [f"{int(wait_s * 1000)}ms"]
            )
            try:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [k1, k2])
                got = True
            except OperationalError as exc:
                if "lock timeout" not in str(exc):
                    raise
                got = False
            finally:
                cursor.execute("SELECT set_config('lock_timeout', '0', false)")
        else:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [k1, k2])
            got = bool(cursor.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [k1, k2])
