"""Test support for projects that use the outbox (and for its own tests): a pytest plugin.

Enable it with ``pytest_plugins = ["outbox.testing"]`` in the root ``conftest.py``.
Tests talk to the real PostgreSQL and Redis; each test gets Redis keys of its own.

Functions (usable without pytest too):

- ``drain()``: relay and consume in this process until nothing moves;
- ``deliver(group, type, payload)``: one event straight to a group's handler;
- ``wait_for(condition)``: poll until true, with a bounded wait;
- ``process_env(settings)``: the environment a child process needs to see the
  test's database and Redis keys (run ``outbox_relay`` / ``outbox_consume`` in it).

Fixtures:

- ``outbox_prefix`` (autouse): a Redis key prefix of the test's own, removed after;
- ``outbox_readers``: the relay and every consumer group as readers in this
  process, for the test (with ``transactional_db``);
- ``outbox_processes``: starts the foreground commands as real processes;
- ``outbox_faults``: what goes wrong in production, on purpose: hold a group back,
  deliver entries twice, lose Redis's data, park the relay between its XADD and
  marking the rows published (then kill it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
import redis
from django.db import connection
from django.utils import timezone

from outbox import lease, streams
from outbox.consumer import apply, consume, lease_name
from outbox.message import Message
from outbox.registry import registry
from outbox.relay import relay_partition

# --- functions --------------------------------------------------------------------------------


def drain(*, groups: list[str] | None = None, max_rounds: int = 50, timeout_s: float = 30.0) -> int:
    """Relay and consume until a whole round moves nothing; returns events handled.

    Raises ``AssertionError`` if it is still moving after ``max_rounds`` or
    ``timeout_s``: the system did not settle.
    """
    streams.ensure_groups()
    names = groups or sorted(registry.groups)
    handled = 0
    deadline = time.monotonic() + timeout_s
    for _ in range(max_rounds):
        moved = 0
        for partition in streams.partitions():
            moved += relay_partition(partition).published
            for group in names:
                result = consume(group, partition)
                moved += result.acked
                handled += result.handled
        if moved == 0:
            return handled
        if time.monotonic() > deadline:
            break
    raise AssertionError("the outbox did not settle")


def deliver(
    group: str,
    event_type: str,
    payload: dict,
    *,
    aggregate_type: str = "test",
    aggregate_id: str | int = "1",
    version: int = 1,
    event_id: uuid.UUID | None = None,
) -> bool:
    """Apply one event to a group's handler as the consumer would, without a stream.

    For a test of one app's handlers with another app's event, whose class it may
    not import. The payload goes through a JSON round trip first. Returns False
    when the group had already applied ``event_id``; raises what the handler raises.
    """
    handler = registry.groups[group].handlers[event_type]
    message = Message(
        event_id=event_id or uuid.uuid4(),
        type=event_type,
        version=version,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_version=1,
        sequence=0,
        occurred_at=timezone.now(),
        payload=json.loads(json.dumps(payload)),
    )
    return apply(group, message, handler)


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str = "",
) -> Any:
    """Poll ``condition`` until it returns a truthy value or ``timeout`` passes (then fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message or condition}")
        time.sleep(interval)


def process_env(settings: Any, **extra: str) -> dict[str, str]:
    """Environment for a child process that sees this test's database and Redis keys."""
    from outbox.conf import conf

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE,
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or 'localhost'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        REDIS_URL=conf.redis_url(),
        OUTBOX_REDIS_URL=conf.redis_url(),
        OUTBOX_STREAM_PREFIX=conf.STREAM_PREFIX,
        OUTBOX_PARTITIONS=str(conf.PARTITIONS),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def outbox_prefix(settings: Any) -> Iterator[str]:
    """Each test gets its own Redis key prefix (streams, marker, NOTIFY channel), removed after."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    settings.OUTBOX_STREAM_PREFIX = prefix
    yield prefix
    try:
        client = streams.get_redis()
        keys = list(client.scan_iter(f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        pass  # the test made Redis unreachable: it wrote nothing there


@pytest.fixture
def outbox_readers(transactional_db: None) -> Iterator[Any]:
    """The relay and every consumer group as readers in this process, for the test."""
    from outbox.runtime import Runtime

    runtime = Runtime()
    runtime.start()
    yield runtime
    runtime.stop()


class Processes:
    """Foreground ``outbox_relay`` / ``outbox_consume`` commands as real child processes."""

    def __init__(self, settings: Any, manage: list[str]) -> None:
        self.settings = settings
        self.manage = manage
        self.running: list[subprocess.Popen] = []

    def start(self, command: str, *args: str, **env: str) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603 - the library's own commands
            [*self.manage, command, *args],
            env=process_env(self.settings, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.running.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.running:
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate(timeout=30)


@pytest.fixture
def outbox_processes(settings: Any, transactional_db: None) -> Iterator[Processes]:
    """Start ``outbox_relay`` and ``outbox_consume`` as processes: ``start("outbox_relay")``.

    They run ``django-admin`` with the test's settings module, database and keys.
    """
    processes = Processes(settings, [sys.executable, "-m", "django"])
    yield processes
    processes.stop_all()


RELAY_GATE_KEY = 4343  # the advisory lock the relay gate's trigger waits on

_CREATE_GATE = """
CREATE OR REPLACE FUNCTION outbox_test_relay_gate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4343);
    RETURN NEW;
END $$;
CREATE TRIGGER outbox_test_relay_gate BEFORE UPDATE ON outbox_outboxevent
    FOR EACH ROW EXECUTE FUNCTION outbox_test_relay_gate();
"""
_DROP_GATE = """
DROP TRIGGER IF EXISTS outbox_test_relay_gate ON outbox_outboxevent;
DROP FUNCTION IF EXISTS outbox_test_relay_gate();
"""


class Faults:
    """What goes wrong in production, made to happen in a test (PostgreSQL and Redis only)."""

    @contextmanager
    def group_held_back(self, group: str) -> Iterator[None]:
        """No reader consumes ``group`` inside the block (its leases are held here).

        Readers holding them give them up within about a second: they see the wait.
        """
        with ExitStack() as stack:
            for partition in streams.partitions():
                got = stack.enter_context(lease.held(lease_name(group), partition, wait_s=30))
                assert got, f"{group}'s lease on partition {partition} was not given up"
            yield

    def deliver_twice(self, partition: int = 0) -> int:
        """Append a copy of every entry of a partition's stream; returns how many."""
        client = streams.get_redis()
        stream = streams.stream_name(partition)
        entries = client.xrange(stream) or []
        pipe = client.pipeline(transaction=False)
        for _, fields in entries:
            copy: dict[Any, Any] = dict(fields or {})
            pipe.xadd(stream, copy)
        pipe.execute()
        return len(entries)

    def lose_redis_data(self) -> None:
        """FLUSHDB: what Redis restarting empty looks like (never on db 0: a developer's)."""
        client = streams.get_redis()
        if int(client.connection_pool.connection_kwargs.get("db") or 0) == 0:
            pytest.skip("refusing to FLUSHDB Redis db 0: point REDIS_URL at a database of its own")
        client.flushdb()

    @contextmanager
    def relay_parked_before_marking(self) -> Iterator[Callable[[], list[int]]]:
        """Inside the block, a relay that has appended its batch waits before marking it.

        Yields a function that returns the database sessions waiting there: kill
        the relay's process, then end those sessions, to crash it between XADD and
        UPDATE. Needs ``transactional_db``.
        """
        gate = _session_lock(RELAY_GATE_KEY)
        try:
            with connection.cursor() as cursor:
                cursor.execute(_CREATE_GATE)
            yield lambda: _lock_waiters(RELAY_GATE_KEY)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(_DROP_GATE)
            gate.close()


def _session_lock(key: int) -> Any:
    import psycopg

    db = connection.settings_dict
    conn = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "localhost",
        port=db["PORT"] or 5432,
        autocommit=True,
    )
    conn.execute("SELECT pg_advisory_lock(%s)", [key])
    return conn


def _lock_waiters(key: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = 0 AND objid = %s AND objsubid = 1",
            [key],
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.fixture
def outbox_faults() -> Faults:
    return Faults()
