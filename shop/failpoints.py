"""Named points where a test can hold a process, to force one ordering of concurrent steps.

Code marks a point with ``reach("shipping.dispatch.locked", key=order_id)``. It
costs nothing unless ``FAILPOINTS_ENABLED`` is set (tests only). When it is,
reaching a point takes and drops a shared PostgreSQL advisory lock named after
the point and key; a test that holds the exclusive lock (``hold``) keeps every
process that reaches the point waiting there, sees it waiting (``waiting``),
does what it wants to happen first, and lets go. The lock lives in the
database, so the held process may be a thread, a Celery worker or anything
else connected to it, and a waiter that is killed leaves nothing behind.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection

# The first key of every hold point's advisory lock, apart from the outbox's leases.
_PREFIX = "failpoint:"


def _keys(name: str, key: int) -> tuple[int, int]:
    digest = zlib.crc32((_PREFIX + name).encode())
    signed = digest - (1 << 32) if digest >= (1 << 31) else digest
    return signed, int(key) % (1 << 31)


def reach(name: str, *, key: int = 0) -> None:
    """Mark the point ``name`` (for ``key``, e.g. an order id); waits while a test holds it."""
    if not settings.FAILPOINTS_ENABLED or connection.vendor != "postgresql":
        return
    k1, k2 = _keys(name, key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock_shared(%s, %s)", [k1, k2])
        cursor.execute("SELECT pg_advisory_unlock_shared(%s, %s)", [k1, k2])


def _connect():
    import psycopg

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=db.get("PORT") or None,
        autocommit=True,
    )


class Hold:
    """A test's grip on one point: processes reaching it wait until ``release``."""

    def __init__(self, name: str, key: int = 0) -> None:
        self.name, self.key = name, key
        self.k1, self.k2 = _keys(name, key)
        self._conn = _connect()
        self._conn.execute("SELECT pg_advisory_lock(%s, %s)", [self.k1, self.k2])
        self.held = True

    def waiting(self) -> int:
        """How many processes are waiting at the point now."""
        row = self._conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid::bigint = (%s::bigint & 4294967295) AND objid::bigint = %s "
            "AND objsubid = 2",
            [self.k1, self.k2],
        ).fetchone()
        return int(row[0])

    def release(self) -> None:
        if self.held:
            self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", [self.k1, self.k2])
            self.held = False

    def close(self) -> None:
        self.release()
        self._conn.close()


@contextmanager
def hold(name: str, *, key: int = 0) -> Iterator[Hold]:
    """Hold the point ``name`` for the block (released at the end whatever happens)."""
    grip = Hold(name, key)
    try:
        yield grip
    finally:
        grip.close()


def lock_waiters() -> int:
    """Backends of this database waiting for a row or transaction lock (not a hold point)."""
    with _connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')"
        ).fetchone()
    return int(row[0])
