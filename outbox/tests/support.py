"""Helpers of the outbox's guarantee tests: locks held from outside, child processes, Redis loss."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psycopg
from django.conf import settings
from django.db import connection, transaction

from conftest import process_env, wait_for
from outbox import publish, streams
from outbox.models import OutboxEvent
from outbox.tests.probe.events import ThingHappened
from outbox.tests.probe.models import Effect, Thing

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ("probe-alpha", "probe-beta")
BLOCK_KEY = 4242  # the advisory lock the probe's "block" handlers wait on


def raw_connection() -> psycopg.Connection:
    """A database session of its own, outside Django's connection handling (autocommit)."""
    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "localhost",
        port=db["PORT"] or 5432,
        autocommit=True,
    )


class AdvisoryLock:
    """A session advisory lock held by a separate connection until ``release``."""

    def __init__(self, key: int) -> None:
        self.key = key
        self.conn = raw_connection()
        self.conn.execute("SELECT pg_advisory_lock(%s)", [key])

    def release(self) -> None:
        if not self.conn.closed:
            self.conn.close()


def lock_waits(key: int) -> set[tuple[int, datetime]]:
    """(backend, when its current statement began) of this database's waits for ``key``.

    ``key`` is a single-key advisory lock. A backend that gave up waiting and waits
    again shows a new start.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.pid, a.query_start FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND NOT l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1",
            [key],
        )
        return set(cursor.fetchall())


def lock_waiters(key: int) -> list[int]:
    """Backends of this database waiting for the single-key advisory lock ``key``."""
    return sorted(pid for pid, _ in lock_waits(key))


def relation_waiters(table: str) -> list[int]:
    """Backends waiting for a lock on ``table``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND NOT granted "
            "AND relation = %s::regclass",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def lock_report() -> str:
    """Every lock of this database held or awaited, with its session: for a wait that timed out."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.pid, l.locktype, l.mode, l.granted, l.objid, l.relation::regclass::text, "
            "a.application_name, a.state, left(a.query, 120) FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database() "
            "AND l.pid <> pg_backend_pid() ORDER BY l.pid"
        )
        return "\n".join(" | ".join(map(str, row)) for row in cursor.fetchall())


def terminate_backends(pids: list[int]) -> None:
    """End database sessions a killed process left behind, and wait until they are gone."""
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])

    def gone() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            return cursor.fetchone()[0] == 0

    wait_for(gone, timeout=10, message=f"backends {pids} to end")


def child(role: str, *args: str, **env: str) -> subprocess.Popen:
    """A foreground relay (``child("relay", "--once")``) or consumer (``child("consume",
    GROUP)``) as operators run them, seeing this test's database and Redis keys."""
    command = ["outbox_relay", *args] if role == "relay" else ["outbox_consume", "--group", *args]
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        env=process_env(settings, **env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(*procs: subprocess.Popen, timeout: float = 30) -> list[str]:
    """SIGTERM loop children, wait for them and return their output; each must exit cleanly."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    outputs = []
    for proc in procs:
        output, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, output
        outputs.append(output)
    return outputs


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def thing_event(thing_id: int, *, kind: str = "ok") -> int:
    """What a service does: lock the aggregate's row, change it, publish, in one transaction."""
    with transaction.atomic():
        thing = Thing.objects.select_for_update().get(pk=thing_id)
        thing.step += 1
        thing.save(update_fields=["step"])
        publish(ThingHappened(thing_id=thing.pk, step=thing.step, kind=kind))
        return thing.step


def applied_steps(group: str, thing_id: int) -> list[int]:
    """The steps ``group`` applied for a thing, in the order it applied them."""
    return list(
        Effect.objects.filter(group=group, aggregate_id=str(thing_id))
        .order_by("id")
        .values_list("step", flat=True)
    )


def published_steps(thing_id: int) -> list[int]:
    """The steps of a thing's ThingHappened events, in commit (aggregate version) order."""
    return [
        payload["step"]
        for payload in OutboxEvent.objects.filter(
            event_type=ThingHappened.name, aggregate_type="thing", aggregate_id=str(thing_id)
        )
        .order_by("aggregate_version")
        .values_list("payload", flat=True)
    ]


def stream_ids(partition: int = 0) -> list[str]:
    return [entry_id for entry_id, _ in streams.get_redis().xrange(streams.stream_name(partition))]


def stream_event_ids(partition: int = 0) -> list[str]:
    return [
        fields.get("id") for _, fields in streams.get_redis().xrange(streams.stream_name(partition))
    ]


def assert_audit_clean() -> None:
    """The auditor finds nothing wrong with the probe groups' handling of the log."""
    from outbox.audit import audit

    faults = {name: result for name, result in audit().items() if result.faults}
    assert not faults, faults
