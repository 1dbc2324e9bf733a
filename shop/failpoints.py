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
from collections.abc import Iterable, Iterator
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
        # Wait as long as the test holds the point, even in a session with a lock_timeout
        # (the outbox's readers of batching groups have one): set first, in one statement.
        cursor.execute(
            "SELECT set_config('lock_timeout', '0', true), pg_advisory_lock_shared(%s, %s)",
            [k1, k2],
        )
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


_WAITING = (
    "SELECT DISTINCT l.objid::bigint FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND NOT l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = (%s::bigint & 4294967295)"
)
_BLOCKING = (
    "SELECT DISTINCT l.objid::bigint FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND NOT l.granted AND l.objsubid = 2 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND l.classid::bigint = (%s::bigint & 4294967295) "
    "AND EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = current_database() "
    "AND l.pid = ANY(pg_blocking_pids(a.pid)))"
)


class Holds:
    """A test's grip on a point for some keys: processes reaching it for them wait until released.

    All keys are held on one connection of its own, so the test's own queries
    never wait for them.
    """

    def __init__(self, name: str, keys: Iterable[int]) -> None:
        self.name = name
        self.k1 = _keys(name, 0)[0]
        self._conn = _connect()
        self.held: set[int] = set()
        for key in keys:
            self._conn.execute("SELECT pg_advisory_lock(%s, %s)", _keys(name, key))
            self.held.add(key)

    def _select_keys(self, sql: str) -> set[int]:
        rows = self._conn.execute(sql, [self.k1]).fetchall()
        return {int(row[0]) for row in rows} & self.held

    def waiting(self) -> set[int]:
        """The held keys some process is waiting at now."""
        return self._select_keys(_WAITING)

    def blocking(self) -> set[int]:
        """The held keys whose waiter holds a lock (a row, say) that another backend waits for."""
        return self._select_keys(_BLOCKING)

    def release(self, key: int = 0) -> None:
        if key in self.held:
            self._conn.execute("SELECT pg_advisory_unlock(%s, %s)", _keys(self.name, key))
            self.held.discard(key)

    def close(self) -> None:
        for key in list(self.held):
            self.release(key)
        self._conn.close()


def waits_for_lock(pid: int) -> bool:
    """Whether the backend ``pid`` is waiting for a lock (a row's, say) right now."""
    with _connect() as conn:
        row = conn.execute(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return bool(row and row[0])


@contextmanager
def hold(name: str, *keys: int) -> Iterator[Holds]:
    """Hold the point ``name`` for ``keys`` (default: 0) for the block, released at its end."""
    grip = Holds(name, keys or (0,))
    try:
        yield grip
    finally:
        grip.close()
