"""The benchmark's workspace: its database and Redis keys, checked, filled and emptied.

Everything the benchmark writes is recognisable and removed at the end (and what a
crashed run left, at the start): outbox rows of its aggregate types, inbox rows,
failures and dead letters of its event type, its ``Applied`` rows, the Redis keys
under its prefix, the Celery bindings of its queue and its stream layout (so that
``OUTBOX_PARTITIONS`` seeds the next run's).
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import redis
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from bench.outbox_app.events import OrderPlaced
from bench.outbox_app.handlers import GROUPS
from outbox import context, layout, streams
from outbox.layout import Layout, slot_for
from outbox.publishing import new_event_id
from outbox.registry import registry
from outbox.relay import relay_partition

APP = "bench.outbox_app"
AGGREGATE_TYPE = "bench_order"  # the events the phases publish and relay
RETAINED_TYPE = "bench_retained"  # the published history of the flat-cost phase
AGGREGATE_TYPES = (AGGREGATE_TYPE, RETAINED_TYPE)
THROUGHPUT_PARTITION = 0  # the throughput phases pin their events to this partition
CATALOGUE = (
    ("SKU-00017", "Espresso cup", "7.90"),
    ("SKU-00231", "Paper filters", "3.20"),
    ("SKU-01044", "Milk jug, steel", "14.50"),
    ("SKU-00562", "Coffee beans 1kg", "18.90"),
)
BENCH_TABLES = ("outbox_outboxevent", "outbox_inboxentry", "outbox_bench_applied")
COPY_EVENTS = (
    "COPY outbox_outboxevent (event_id, event_type, version, aggregate_type, aggregate_id, "
    "aggregate_version, slot, payload, headers, occurred_at, published_at, attempts, last_error) "
    "FROM STDIN"
)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why in one line."""


def order_payload(run: str, n: int, order_id: int, *, track: bool = False) -> dict:
    """An order-shaped payload of about 330 bytes of JSON."""
    first, second = CATALOGUE[n % 4], CATALOGUE[(n + 1) % 4]
    quantities = (1 + n % 3, 1)
    total = Decimal(first[2]) * quantities[0] + Decimal(second[2]) * quantities[1]
    return {
        "order_id": order_id,
        "customer_id": 1000 + n % 997,
        "lines": [
            {"sku": sku, "name": name, "unit_price": price, "quantity": quantity}
            for (sku, name, price), quantity in zip((first, second), quantities, strict=True)
        ],
        "total": str(total),
        "currency": "EUR",
        "payment_token": "tok_visa",
        "run": run,
        "n": n,
        "track": track,
    }


def conninfo(dbname: str | None = None) -> dict[str, object]:
    """psycopg connection arguments for the benchmark's database (or another on its server)."""
    db = settings.DATABASES["default"]
    info = {
        "dbname": dbname or db["NAME"],
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        "host": db.get("HOST"),
        "port": db.get("PORT"),
    }
    return {key: value for key, value in info.items() if value not in (None, "")}


def backend_pid() -> int:
    """The PostgreSQL backend of this thread's Django connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def bench_groups() -> list[str]:
    return list(GROUPS)


def all_groups() -> list[str]:
    return sorted(registry.groups)


class Workspace:
    """The database and Redis of one run, and the fresh aggregate ids it hands out."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.next_order_id = 1

    # --- checks ----------------------------------------------------------------------------

    def check_settings(self) -> None:
        if not apps.is_installed(APP):
            raise BenchError(
                "the benchmark app is not installed: run with "
                "DJANGO_SETTINGS_MODULE=shop.bench_settings (make bench-outbox does)"
            )
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise BenchError(
                "the benchmark needs PostgreSQL: set DATABASE_URL "
                "(make bench-outbox uses postgres://postgres@localhost:5432/shop_bench)"
            )
        name = settings.DATABASES["default"]["NAME"]
        if "bench" not in name:
            # It migrates, writes and deletes outbox rows: never a database in use.
            raise BenchError(
                f"the benchmark needs a database of its own, named like shop_bench, not {name!r}: "
                "set DATABASE_URL (make bench-outbox uses BENCH_DATABASE_URL, default "
                "postgres://postgres@localhost:5432/shop_bench)"
            )

    def check_services(self) -> None:
        """Fail with one readable line when PostgreSQL or Redis does not answer."""
        db = settings.DATABASES["default"]
        where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        try:
            psycopg.connect(**conninfo(), connect_timeout=3).close()
        except psycopg.OperationalError as exc:
            if f'database "{db["NAME"]}" does not exist' not in str(exc):
                text = str(exc).strip()
                first = text.splitlines()[0] if text else type(exc).__name__
                raise BenchError(f"PostgreSQL does not answer at {where}: {first}") from None
            with psycopg.connect(**conninfo("postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            self.say(f"created database {db['NAME']}")
        try:
            redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3
            ).ping()
        except redis.RedisError as exc:
            raise BenchError(f"Redis does not answer at {settings.REDIS_URL}: {exc}") from None

    def prepare(self) -> Layout:
        """Migrate, refuse a database in use, start clean; returns the layout the run uses."""
        # The whole shop: the worker of the latency phase runs its beat tasks too.
        call_command("migrate", verbosity=0)
        from outbox.models import OutboxEvent

        others = OutboxEvent.objects.exclude(aggregate_type__in=AGGREGATE_TYPES).count()
        if others:
            raise BenchError(
                f"database {settings.DATABASES['default']['NAME']} holds {others} outbox "
                "event(s) that are not the benchmark's; the relay would publish them: "
                "give the benchmark a database of its own (BENCH_DATABASE_URL)"
            )
        self.cleanup()
        current = layout.current()  # seeded from OUTBOX_PARTITIONS
        client = streams.get_redis()
        streams.ensure_groups(client, current.range())
        # As on a running system: Redis holds the outbox's data (no recovery replay).
        streams.set_marker(client)
        return current

    # --- what the run leaves ------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove every row and Redis key the benchmark wrote (and what a crashed run left)."""
        from bench.outbox_app.models import Applied
        from outbox.models import DeadLetter, DeliveryFailure, StreamLayout

        prefix = settings.OUTBOX_STREAM_PREFIX
        self.remove_events()
        DeadLetter.objects.filter(event_type__startswith="bench.").delete()
        DeliveryFailure.objects.filter(stream__startswith=f"{prefix}:").delete()
        Applied.objects.all().delete()
        StreamLayout.objects.filter(prefix=prefix).delete()
        self.delete_keys(f"{prefix}:*")
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        streams.get_redis().delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")

    def remove_events(self) -> None:
        """Remove the benchmark's outbox and inbox rows (TRUNCATE when nothing else is there)."""
        from outbox.models import InboxEntry, OutboxEvent

        if not OutboxEvent.objects.exclude(aggregate_type__in=AGGREGATE_TYPES).exists():
            self.truncate("outbox_outboxevent")  # a million retained rows go at once
        else:
            OutboxEvent.objects.filter(aggregate_type__in=AGGREGATE_TYPES).delete()
        if not InboxEntry.objects.exclude(event_type__startswith="bench.").exists():
            self.truncate("outbox_inboxentry")
        else:
            InboxEntry.objects.filter(event_type__startswith="bench.").delete()
            self.vacuum("outbox_inboxentry")
        self.vacuum("outbox_outboxevent")

    @staticmethod
    def truncate(table: str) -> None:
        assert table in BENCH_TABLES
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table}")

    @staticmethod
    def delete_keys(pattern: str) -> None:
        client = streams.get_redis()
        batch: list[str] = []
        for name in client.scan_iter(pattern, count=1000):
            batch.append(name)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)

    @staticmethod
    def vacuum(*tables: str) -> None:
        """VACUUM ANALYZE the outbox table (or these of the benchmark's tables)."""
        with connection.cursor() as cursor:
            for table in tables or ("outbox_outboxevent",):
                assert table in BENCH_TABLES
                cursor.execute(f"VACUUM ANALYZE {table}")

    def reset_log(self) -> None:
        """Remove the phases' events (not the retained history) and the streams' entries, vacuum."""
        from outbox.models import OutboxEvent

        OutboxEvent.objects.filter(aggregate_type=AGGREGATE_TYPE).delete()
        self.delete_keys(streams.key("events", "*"))
        self.delete_keys(streams.key("raw", "*"))
        streams.ensure_groups(parts=layout.current().range())
        self.vacuum()

    # --- events ------------------------------------------------------------------------------

    def order_ids(self, count: int, *, partition: int | None = None) -> list[int]:
        """Fresh aggregate ids, all on ``partition`` if given (else wherever they hash)."""
        current = layout.current() if partition is not None else None
        ids: list[int] = []
        while len(ids) < count:
            candidate = self.next_order_id
            self.next_order_id += 1
            if current is None or (
                current.partition_for(AGGREGATE_TYPE, str(candidate)) == partition
            ):
                ids.append(candidate)
        return ids

    def copy_events(self, run: str, count: int, *, partition: int = THROUGHPUT_PARTITION) -> None:
        """Bulk-insert unpublished rows with the values ``publish()`` writes (COPY: fast)."""
        now = datetime.now(UTC)
        headers = json.dumps(context.current().headers())
        ids = self.order_ids(count, partition=partition)  # a query: not during the COPY
        with connection.cursor() as cursor, cursor.cursor.copy(COPY_EVENTS) as copy:
            for n, order_id in enumerate(ids):
                copy.write_row(
                    (
                        new_event_id(),
                        OrderPlaced.name,
                        OrderPlaced.version,
                        AGGREGATE_TYPE,
                        str(order_id),
                        1,
                        slot_for(AGGREGATE_TYPE, str(order_id)),
                        json.dumps(order_payload(run, n, order_id)),
                        headers,
                        now,
                        None,
                        0,
                        "",
                    )
                )

    @staticmethod
    def relay_all(partition: int = THROUGHPUT_PARTITION) -> int:
        """Relay the partition until nothing is left; returns how many events moved."""
        moved = 0
        while True:
            result = relay_partition(partition, max_seconds=300)
            if result.busy:
                raise BenchError(f"another relay holds partition {partition}'s lease")
            if not result.published:
                return moved
            moved += result.published

    # --- the machine ----------------------------------------------------------------------

    @staticmethod
    def machine() -> dict:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
            pg = {}
            for name in ("synchronous_commit", "fsync", "shared_buffers"):
                cursor.execute(f"SHOW {name}")
                pg[name] = cursor.fetchone()[0]
        info = streams.get_redis().info("server")
        return {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "postgres": pg_version,
            "postgres_settings": pg,
            "redis": info.get("redis_version"),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        }


def chunks(lines: Iterator[str], size: int = 5000) -> Iterator[str]:
    """Join lines into COPY chunks of ``size`` lines."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
