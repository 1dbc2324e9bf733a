"""Measure the outbox on the real path (PostgreSQL and Redis) and write the figures as JSON.

The phases run on a database of the benchmark's own and under its own Redis key prefix:

1. the machine's baselines (XADD-to-XREADGROUP delivery, a two-row commit);
2. relay throughput against a raw psycopg + redis-py loop doing the same work,
   alternated run by run, median of each;
3. consumer throughput per benchmark group;
4. commit-to-handled latency at a steady offered rate, through a real Celery
   worker, then through the foreground relay and tight consumer loops.

Run with ``make bench-outbox`` (settings ``shop.bench_settings``); bench/README.md
explains the figures.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import psycopg
import redis
from django.apps import apps
from django.conf import settings
from django.core.management import BaseCommand, CommandError, call_command
from django.db import connection, transaction
from psycopg import sql

from outbox import context, publish, streams
from outbox.message import encode_row
from outbox.publishing import partition_for
from outbox.relay import MARK_PUBLISHED, SELECT_BATCH

PARTITION = 0
AGGREGATE_TYPE = "bench_order"
CATALOGUE = (
    ("SKU-00017", "Espresso cup", "7.90"),
    ("SKU-00231", "Paper filters", "3.20"),
    ("SKU-01044", "Milk jug, steel", "14.50"),
    ("SKU-00562", "Coffee beans 1kg", "18.90"),
)
COPY_ROWS = (
    "COPY outbox_outboxevent (event_id, event_type, version, aggregate_type, aggregate_id, "
    "aggregate_version, partition, payload, headers, occurred_at, attempts, last_error) "
    "FROM STDIN"
)
# Django logs an on_commit callback that raised (robust=True) under this name.
ON_COMMIT_LOGGER = "django.db.backends.base"


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, interpolated between ranks."""
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3) if ordered else float("nan"),
        "mean": round(sum(ordered) / len(ordered), 3) if ordered else float("nan"),
        "samples": len(ordered),
    }


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return percentile(ordered, 50)


def proc_cpu(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds used so far) of a local process, from /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu(groups: set[int]) -> float:
    """CPU seconds used so far by every live process of these process groups."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_cpu(int(entry.name))
            if stat is not None and stat[0] in groups:
                total += stat[1]
    return total


def backend_cpu(pid: int | None) -> float | None:
    """CPU seconds of a PostgreSQL backend, when the server runs on this machine."""
    stat = proc_cpu(pid) if pid else None
    return stat[1] if stat else None


class CpuMeter:
    """CPU used by this process and one PostgreSQL backend over a block, per event."""

    def __init__(self, backend_pid: int | None) -> None:
        self.backend_pid = backend_pid

    def __enter__(self) -> CpuMeter:
        self.client = time.process_time()
        self.server = backend_cpu(self.backend_pid)
        return self

    def __exit__(self, *_exc) -> None:
        self.client = time.process_time() - self.client
        end = backend_cpu(self.backend_pid)
        self.server = None if end is None or self.server is None else end - self.server

    def per_event_ms(self, count: int) -> dict[str, float | None]:
        return {
            "client": round(self.client * 1000 / count, 4),
            "postgres": None if self.server is None else round(self.server * 1000 / count, 4),
        }


def order_payload(run: str, n: int, order_id: int, *, track: bool = False) -> dict:
    """An order-shaped payload of about 300 bytes of JSON."""
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


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *_exc) -> None:
        self.seconds = time.perf_counter() - self.start


class CountingFilter(logging.Filter):
    """Counts (and swallows) the records of failed on_commit callbacks, keeping one."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.first = ""

    def filter(self, record: logging.LogRecord) -> bool:
        self.count += 1
        if not self.first:
            exc = record.exc_info[1] if record.exc_info else None
            self.first = f"{record.getMessage()} {type(exc).__name__}: {exc}" if exc else ""
        return False


class Command(BaseCommand):
    help = (
        "Benchmark the outbox: relay and consumer throughput, commit-to-handled latency. "
        "Needs shop.bench_settings and a PostgreSQL database of its own (make bench-outbox)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", help="write the figures to this file")
        parser.add_argument("--events", type=int, default=20_000, help="rows per relay run")
        parser.add_argument("--runs", type=int, default=5, help="relay runs and raw runs each")
        parser.add_argument(
            "--consumer-events", type=int, default=10_000, help="events per consumer group"
        )
        parser.add_argument("--rate", type=float, default=500.0, help="offered events/s")
        parser.add_argument("--duration", type=float, default=15.0, help="seconds of offered load")
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Celery worker pool processes"
        )
        parser.add_argument(
            "--producers", type=int, default=4, help="producer threads of the latency phase"
        )
        parser.add_argument(
            "--relay-interval",
            type=float,
            default=0.005,
            help="idle poll interval of the foreground relay, seconds",
        )
        parser.add_argument(
            "--block-ms", type=int, default=100, help="XREADGROUP block of the consumer loops"
        )
        parser.add_argument(
            "--drain-timeout", type=float, default=30.0, help="seconds to wait for stragglers"
        )
        parser.add_argument(
            "--phases",
            default="baselines,relay,consumers,celery,foreground",
            help="comma-separated subset of baselines,relay,consumers,celery,foreground",
        )

    # --- entry point ---------------------------------------------------------

    def handle(self, *args, **options) -> None:
        if not apps.is_installed("outbox.bench"):
            raise CommandError(
                "the benchmark app is not installed: run with "
                "DJANGO_SETTINGS_MODULE=shop.bench_settings (make bench-outbox does)"
            )
        phases = {p.strip() for p in options["phases"].split(",") if p.strip()}
        unknown = phases - {"baselines", "relay", "consumers", "celery", "foreground"}
        if unknown:
            raise CommandError(f"unknown phase(s): {', '.join(sorted(unknown))}")
        self.options = options
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            raise CommandError(
                "the benchmark needs PostgreSQL: set DATABASE_URL "
                "(make bench-outbox uses postgres://postgres@localhost:5432/shop_bench)"
            )
        name = settings.DATABASES["default"]["NAME"]
        if "bench" not in name:
            # It migrates, writes and deletes outbox rows: never a database in use.
            raise CommandError(
                f"the benchmark needs a database of its own, named like shop_bench, not {name!r}: "
                "set DATABASE_URL (make bench-outbox uses BENCH_DATABASE_URL, default "
                "postgres://postgres@localhost:5432/shop_bench)"
            )
        self.check_services()
        call_command("migrate", "outbox", verbosity=0)
        call_command("migrate", "outbox_bench", verbosity=0)
        self.check_dedicated()
        self.next_order_id = 1
        self.children: list[subprocess.Popen] = []
        report: dict = {"machine": self.machine(), "params": self.params()}
        started = time.monotonic()
        self.cleanup()
        # As on a running system: Redis holds the outbox's data (no recovery replay).
        streams.set_marker()
        try:
            if "baselines" in phases:
                self.say("baselines ...")
                report["baselines"] = self.baselines()
            if "relay" in phases:
                report.update(self.relay_phase())
            if "consumers" in phases:
                self.say("consumers ...")
                report["consumers"] = self.consumer_phase()
            latency = {
                "offered_rate": options["rate"],
                "duration_s": options["duration"],
                "rows": {},
            }
            for mode in ("celery", "foreground"):
                if mode in phases:
                    self.say(f"latency through {mode} ...")
                    latency["rows"][mode] = self.latency_row(mode)
            if latency["rows"]:
                report["latency"] = latency
        finally:
            self.stop_children()
            self.cleanup()
        report["params"]["wall_s"] = round(time.monotonic() - started, 1)
        budget = self.budget(report)
        if budget:
            report["cpu_budget"] = budget
        self.print_table(report)
        if options["json"]:
            path = Path(options["json"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n")
            self.stdout.write(f"wrote {path}")
        lost = sum(
            g["lost"]
            for row in report.get("latency", {}).get("rows", {}).values()
            for g in row["groups"].values()
        )
        if lost:
            raise CommandError(f"{lost} event(s) were not handled within the drain timeout")

    def say(self, text: str) -> None:
        self.stderr.write(text)

    # --- environment ---------------------------------------------------------

    def conninfo(self, dbname: str | None = None) -> dict:
        db = settings.DATABASES["default"]
        info = {
            "dbname": dbname or db["NAME"],
            "user": db.get("USER"),
            "password": db.get("PASSWORD"),
            "host": db.get("HOST"),
            "port": db.get("PORT"),
        }
        return {key: value for key, value in info.items() if value not in (None, "")}

    def check_services(self) -> None:
        """Fail with one readable line when PostgreSQL or Redis does not answer."""
        db = settings.DATABASES["default"]
        where = f"{db.get('HOST') or 'localhost'}:{db.get('PORT') or 5432}"
        try:
            psycopg.connect(**self.conninfo(), connect_timeout=3).close()
        except psycopg.OperationalError as exc:
            if f'database "{db["NAME"]}" does not exist' not in str(exc):
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CommandError(f"PostgreSQL does not answer at {where}: {first}") from None
            self.create_database(db["NAME"])
        try:
            redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3
            ).ping()
        except redis.RedisError as exc:
            raise CommandError(f"Redis does not answer at {settings.REDIS_URL}: {exc}") from None

    def create_database(self, name: str) -> None:
        with psycopg.connect(**self.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.say(f"created database {name}")

    def check_dedicated(self) -> None:
        from outbox.models import OutboxEvent

        others = OutboxEvent.objects.exclude(aggregate_type=AGGREGATE_TYPE).count()
        if others:
            raise CommandError(
                f"database {settings.DATABASES['default']['NAME']} holds {others} outbox "
                "event(s) that are not the benchmark's; the relay would publish them: "
                "give the benchmark a database of its own (BENCH_DATABASE_URL)"
            )

    def machine(self) -> dict:
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

    def params(self) -> dict:
        o = self.options
        sample = json.dumps(order_payload("relay-1", 1, 123456))
        return {
            "relay_events": o["events"],
            "runs": o["runs"],
            "relay_batch_size": settings.OUTBOX_RELAY_BATCH_SIZE,
            "consumer_events": o["consumer_events"],
            "consumer_batch_size": settings.OUTBOX_CONSUMER_BATCH_SIZE,
            "offered_rate": o["rate"],
            "duration_s": o["duration"],
            "worker_concurrency": o["concurrency"],
            "producer_threads": o["producers"],
            "foreground_relay_interval_s": o["relay_interval"],
            "consumer_loop_block_ms": o["block_ms"],
            "payload_bytes": len(sample),
            "partitions": settings.OUTBOX_PARTITIONS,
            "stream_prefix": settings.OUTBOX_STREAM_PREFIX,
            "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE", 0),
            "groups": self.bench_groups(),
            "all_groups": sorted(self.registry().groups),
        }

    @staticmethod
    def registry():
        from outbox.registry import registry

        return registry

    @staticmethod
    def bench_groups() -> list[str]:
        from outbox.bench.handlers import GROUPS

        return list(GROUPS)

    def cleanup(self) -> None:
        """Remove every row and Redis key the benchmark wrote (and what a crashed run left)."""
        from outbox.bench.models import Applied
        from outbox.models import DeadLetter, DeliveryFailure, InboxEntry, OutboxEvent

        OutboxEvent.objects.filter(aggregate_type=AGGREGATE_TYPE).delete()
        InboxEntry.objects.filter(event_type__startswith="bench.").delete()
        DeadLetter.objects.filter(event_type__startswith="bench.").delete()
        DeliveryFailure.objects.filter(
            stream__startswith=f"{settings.OUTBOX_STREAM_PREFIX}:"
        ).delete()
        Applied.objects.all().delete()
        self.delete_keys(f"{settings.OUTBOX_STREAM_PREFIX}:*")
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        streams.get_redis().delete(f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")

    def delete_keys(self, pattern: str) -> None:
        client = streams.get_redis()
        batch = []
        for name in client.scan_iter(pattern, count=1000):
            batch.append(name)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)

    def vacuum(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE outbox_outboxevent")

    def reset_log(self) -> None:
        """Empty the outbox of benchmark rows and the streams, and vacuum."""
        from outbox.models import OutboxEvent

        OutboxEvent.objects.filter(aggregate_type=AGGREGATE_TYPE).delete()
        self.delete_keys(streams.key("events", "*"))
        self.delete_keys(streams.key("raw", "*"))
        self.vacuum()

    def order_ids(self, count: int) -> list[int]:
        """Fresh aggregate ids that fall in the benchmark's partition."""
        ids = []
        while len(ids) < count:
            candidate = self.next_order_id
            self.next_order_id += 1
            if partition_for(AGGREGATE_TYPE, str(candidate)) == PARTITION:
                ids.append(candidate)
        return ids

    def insert_rows(self, run: str, count: int) -> None:
        """Bulk-insert unpublished rows with the values ``publish()`` writes (COPY: fast)."""
        from outbox.bench.events import OrderPlaced

        now = datetime.now(UTC)
        with connection.cursor() as cursor, cursor.cursor.copy(COPY_ROWS) as copy:
            for n, order_id in enumerate(self.order_ids(count)):
                copy.write_row(
                    (
                        uuid.uuid4(),
                        OrderPlaced.name,
                        OrderPlaced.version,
                        AGGREGATE_TYPE,
                        str(order_id),
                        1,
                        PARTITION,
                        json.dumps(order_payload(run, n, order_id)),
                        json.dumps(context.current().headers()),
                        now,
                        0,
                        "",
                    )
                )

    # --- baselines -------------------------------------------------------------

    def baselines(self) -> dict:
        return {
            "xadd_to_xreadgroup_ms": self.xadd_delivery(samples=1000),
            "commit_two_rows_ms": self.two_row_commit(samples=500),
        }

    def xadd_delivery(self, *, samples: int) -> dict:
        """A reader blocked in XREADGROUP; a writer XADDs its clock every millisecond."""
        stream = streams.key("baseline", "delivery")
        writer = redis.Redis.from_url(settings.REDIS_URL)
        reader = redis.Redis.from_url(settings.REDIS_URL)
        writer.xgroup_create(stream, "g", id="$", mkstream=True)
        delays: list[float] = []
        ready = threading.Event()

        def read() -> None:
            ready.set()
            while len(delays) < samples:
                reply = reader.xreadgroup("g", "c", {stream: ">"}, count=100, block=2000)
                now = time.monotonic()
                if not reply:
                    return
                for _entry_id, fields in reply[0][1]:
                    delays.append(now - float(fields[b"t"]))

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        ready.wait()
        time.sleep(0.05)
        for _ in range(samples):
            writer.xadd(stream, {"t": repr(time.monotonic())})
            time.sleep(0.001)
        thread.join(timeout=10)
        writer.delete(stream)
        return summary_ms(delays)

    def two_row_commit(self, *, samples: int) -> dict:
        """BEGIN, two INSERTs, COMMIT with psycopg: the floor of any publishing transaction."""
        whole, commit = [], []
        with psycopg.connect(**self.conninfo()) as conn:
            for n in range(samples + 20):
                t0 = time.perf_counter()
                with conn.cursor() as cursor:
                    for group in ("baseline-1", "baseline-2"):
                        cursor.execute(
                            "INSERT INTO outbox_bench_applied "
                            '("group", event_id, run, n, created_at) '
                            "VALUES (%s, gen_random_uuid(), 'baseline', %s, now())",
                            [group, n],
                        )
                t1 = time.perf_counter()
                conn.commit()
                t2 = time.perf_counter()
                if n >= 20:  # the first ones warm the connection up
                    whole.append(t2 - t0)
                    commit.append(t2 - t1)
            conn.execute("DELETE FROM outbox_bench_applied WHERE run = 'baseline'")
            conn.commit()
        return {"transaction": summary_ms(whole), "commit_only": summary_ms(commit)}

    # --- relay vs raw --------------------------------------------------------

    def relay_phase(self) -> dict:
        count, runs = self.options["events"], self.options["runs"]
        # Warm both paths (connections, statement caches) on a small backlog first.
        self.relay_run("warm-relay", 1000)
        self.raw_run("warm-raw", 1000)
        relay_runs, raw_runs = [], []
        for i in range(runs):
            self.say(f"relay vs raw, run {i + 1}/{runs} ...")
            # Alternate which goes first, so a drift in the machine's load favours neither.
            if i % 2 == 0:
                raw_runs.append(self.raw_run(f"raw-{i + 1}", count))
                relay_runs.append(self.relay_run(f"relay-{i + 1}", count))
            else:
                relay_runs.append(self.relay_run(f"relay-{i + 1}", count))
                raw_runs.append(self.raw_run(f"raw-{i + 1}", count))
        relay = self.throughput(
            relay_runs, count, "outbox.relay.relay_partition(0, on_batch=None) until drained"
        )
        raw = self.throughput(
            raw_runs,
            count,
            "psycopg + redis-py, no Django: SELECT batch, pipelined XADD, UPDATE, COMMIT",
        )
        return {
            "relay": relay,
            "raw": raw,
            "ratio": round(relay["median_ev_s"] / raw["median_ev_s"], 3),
            # Each relay run against the raw run next to it in time.
            "pair_ratios": [
                round(raw_s / relay_s, 3)
                for (relay_s, _), (raw_s, _) in zip(relay_runs, raw_runs, strict=True)
            ],
        }

    @staticmethod
    def throughput(runs: list[tuple[float, CpuMeter]], count: int, how: str) -> dict:
        rates = [count / seconds for seconds, _ in runs]
        cpu = [meter.per_event_ms(count) for _, meter in runs]
        server = [c["postgres"] for c in cpu if c["postgres"] is not None]
        return {
            "how": how,
            "events": count,
            "batch_size": settings.OUTBOX_RELAY_BATCH_SIZE,
            "runs_ev_s": [round(r) for r in rates],
            "runs_s": [round(seconds, 3) for seconds, _ in runs],
            "median_ev_s": round(median(rates)),
            "cpu_ms_per_event": {
                "client": round(median([c["client"] for c in cpu]), 4),
                "postgres": round(median(server), 4) if server else None,
            },
        }

    def backend_pid(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def relay_run(self, run: str, count: int) -> tuple[float, CpuMeter]:
        from outbox.relay import relay_partition

        self.insert_rows(run, count)
        self.vacuum()
        moved = 0
        with CpuMeter(self.backend_pid()) as cpu, Stopwatch() as watch:
            while True:
                result = relay_partition(PARTITION, on_batch=None, max_seconds=300)
                if result.busy:
                    raise CommandError("another relay holds the benchmark partition's lease")
                if not result.published:
                    break
                moved += result.published
        if moved != count:
            raise CommandError(f"the relay moved {moved} of {count} rows")
        self.reset_log()
        return watch.seconds, cpu

    def raw_run(self, run: str, count: int) -> tuple[float, CpuMeter]:
        """The relay's work without Django: same statements, same entry fields."""
        self.insert_rows(run, count)
        self.vacuum()
        batch = settings.OUTBOX_RELAY_BATCH_SIZE
        stream = streams.key("raw", PARTITION)
        client = redis.Redis.from_url(settings.REDIS_URL)
        moved = 0
        with psycopg.connect(**self.conninfo()) as conn:
            client.ping()
            with CpuMeter(conn.info.backend_pid) as cpu, Stopwatch() as watch:
                while True:
                    with conn.cursor() as cursor:
                        cursor.execute(SELECT_BATCH["postgresql"], [PARTITION, batch])
                        rows = cursor.fetchall()
                        if rows:
                            pipe = client.pipeline(transaction=False)
                            for row in rows:
                                pipe.xadd(stream, encode_row(row))
                            pipe.execute()
                            cursor.execute(
                                MARK_PUBLISHED["postgresql"],
                                [datetime.now(UTC), [row[0] for row in rows]],
                            )
                    conn.commit()
                    if not rows:
                        break
                    moved += len(rows)
        client.close()
        if moved != count:
            raise CommandError(f"the raw loop moved {moved} of {count} rows")
        self.reset_log()
        return watch.seconds, cpu

    # --- consumers -----------------------------------------------------------

    def consumer_phase(self) -> dict:
        from outbox.bench.models import Applied
        from outbox.consumer import consume
        from outbox.relay import relay_partition

        count = self.options["consumer_events"]
        self.insert_rows("consume", count)
        streams.ensure_groups()
        while relay_partition(PARTITION, on_batch=None, max_seconds=300).published:
            pass
        groups = {}
        for group in self.bench_groups():
            handled = 0
            with CpuMeter(self.backend_pid()) as cpu, Stopwatch() as watch:
                while True:
                    result = consume(group, PARTITION, max_seconds=300)
                    if result.busy:
                        raise CommandError(f"another consumer holds {group}'s lease")
                    handled += result.handled
                    if not result.acked:
                        break
            applied = Applied.objects.filter(group=group, run="consume").count()
            if handled != count or applied != count:
                raise CommandError(f"{group} handled {handled} and applied {applied} of {count}")
            groups[group] = {
                "ev_s": round(count / watch.seconds),
                "seconds": round(watch.seconds, 3),
                "cpu_ms_per_event": cpu.per_event_ms(count),
            }
        Applied.objects.filter(run="consume").delete()
        self.reset_log()
        return {
            "how": "outbox.consumer.consume(group, 0) until drained; the handler makes one INSERT",
            "events": count,
            "batch_size": settings.OUTBOX_CONSUMER_BATCH_SIZE,
            "groups": groups,
        }

    # --- latency ---------------------------------------------------------------

    def child_env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,
            BENCH_STREAM_PREFIX=settings.OUTBOX_STREAM_PREFIX,
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def spawn(self, args: list[str], log: Path, **extra: str) -> subprocess.Popen:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            args,
            cwd=settings.BASE_DIR,
            env=self.child_env(**extra),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children.append(proc)
        return proc

    def stop_children(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.children:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.children = []

    def latency_row(self, mode: str) -> dict:
        client = streams.get_redis()
        self.reset_log()
        streams.ensure_groups(client)
        streams.set_marker(client)  # Redis holds the streams: no recovery replay
        with tempfile.TemporaryDirectory(prefix="outbox-bench-") as tmp:
            logs = Path(tmp)
            wake_on_commit = settings.OUTBOX_WAKE_ON_COMMIT
            kombu_keys = set(client.scan_iter("_kombu.*"))
            if mode == "celery":
                self.start_worker(logs)
                how = (
                    f"celery -A shop worker --concurrency={self.options['concurrency']} "
                    "(prefork, embedded beat); wake on commit; the relay wakes the consumers"
                )
            else:
                self.start_foreground(logs)
                # No worker runs: nobody would take the wake-up tasks.
                settings.OUTBOX_WAKE_ON_COMMIT = False
                how = (
                    f"manage.py outbox_relay --no-wake --interval {self.options['relay_interval']} "
                    f"+ manage.py outbox_consume --group G --block-ms {self.options['block_ms']} "
                    "per bench group"
                )
            failures = CountingFilter()
            logging.getLogger(ON_COMMIT_LOGGER).addFilter(failures)
            try:
                self.warm_up(f"{mode}-warm", logs)
                run = f"{mode}-run"
                pgids = {proc.pid for proc in self.children}  # each child leads its group
                children_cpu = group_cpu(pgids)
                commits, producer = self.produce(run)
                handled = self.collect(run, len(commits), logs)
                children_cpu = group_cpu(pgids) - children_cpu
                load = os.getloadavg()[0]
            finally:
                logging.getLogger(ON_COMMIT_LOGGER).removeFilter(failures)
                settings.OUTBOX_WAKE_ON_COMMIT = wake_on_commit
                self.stop_children()
                # The worker's Celery bindings in the benchmark's Redis database.
                new_keys = set(client.scan_iter("_kombu.*")) - kombu_keys
                if new_keys:
                    client.delete(*new_keys)
            tasks = self.task_counts(logs / "worker.log") if mode == "celery" else {}
        row = {
            "how": how,
            "producer": producer,
            # The worker (pool and beat), or the relay and consumer loops, from the
            # first commit until the last event was handled: their own CPU, not PostgreSQL's.
            "pipeline_cpu_ms_per_event": round(children_cpu * 1000 / len(commits), 3),
            "load_average_after": round(load, 2),
            "groups": {},
        }
        if failures.count:
            row["wake_on_commit_failures"] = failures.count
            row["wake_on_commit_error"] = failures.first
        if tasks:
            row["celery_tasks"] = tasks
        published = self.published_at(run)
        row["relay_stage_ms"] = summary_ms(
            [published[n] - commits[n] for n in range(len(commits)) if n in published]
        )
        for group, stamps in handled.items():
            delays = [stamps[n] - commits[n] for n in range(len(commits)) if n in stamps]
            row["groups"][group] = {
                **summary_ms(delays),
                "handled": len(stamps),
                "lost": len(commits) - len(stamps),
                "duplicates": self.duplicates(run, group),
                "consumer_stage_ms": summary_ms(
                    [stamps[n] - published[n] for n in stamps if n in published]
                ),
            }
        self.reset_log()
        return row

    def start_worker(self, logs: Path) -> None:
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.options['concurrency']}",
            "--pool=prefork",
            "--hostname=outbox-bench@%h",
            "-Q",
            settings.CELERY_TASK_DEFAULT_QUEUE,
            "--without-gossip",
            "--without-mingle",
            "-B",
            "--schedule",
            str(logs / "beat-schedule"),
        ]
        log = logs / "worker.log"
        proc = self.spawn(args, log)
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"the Celery worker did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)

    def start_foreground(self, logs: Path) -> None:
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        self.spawn(
            [
                sys.executable,
                manage,
                "outbox_relay",
                "--no-wake",
                "--interval",
                str(self.options["relay_interval"]),
            ],
            logs / "relay.log",
        )
        for group in self.bench_groups():
            self.spawn(
                [
                    sys.executable,
                    manage,
                    "outbox_consume",
                    "--group",
                    group,
                    "--block-ms",
                    str(self.options["block_ms"]),
                ],
                logs / f"consume-{group}.log",
            )

    def check_children(self, logs: Path) -> None:
        for proc in self.children:
            if proc.poll() is not None:
                tails = "\n".join(p.read_text()[-1500:] for p in logs.glob("*.log"))
                raise CommandError(f"a benchmark process exited early:\n{tails}")

    def warm_up(self, run: str, logs: Path, count: int = 20) -> None:
        """Publish a few events and wait until every bench group handled them."""
        from outbox.bench.events import OrderPlaced
        from outbox.bench.models import Applied

        for n, order_id in enumerate(self.order_ids(count)):
            with transaction.atomic():
                publish(OrderPlaced(**order_payload(run, n, order_id)))
        deadline = time.monotonic() + 60
        while Applied.objects.filter(run=run).count() < count * len(self.bench_groups()):
            self.check_children(logs)
            if time.monotonic() > deadline:
                raise CommandError("the warm-up events were not handled within 60 s")
            time.sleep(0.05)

    def produce(self, run: str) -> tuple[list[float], dict]:
        """Publish one event per transaction on an open-loop schedule at the offered rate.

        Event n is due at start + n / rate whatever happened before it (open loop);
        a few producer threads, each with its own connection, keep the schedule when
        one commit is slow. Each event's commit time is taken by an on_commit callback
        registered before publish(): it runs as soon as COMMIT has returned, before
        the wake-up.
        """
        from outbox.bench.events import OrderPlaced

        rate, duration = self.options["rate"], self.options["duration"]
        count = int(rate * duration)
        events = [
            OrderPlaced(**order_payload(run, n, order_id, track=True))
            for n, order_id in enumerate(self.order_ids(count))
        ]
        commits = [0.0] * count
        lags = [0.0] * count
        numbers = iter(range(count))
        lock = threading.Lock()
        errors: list[BaseException] = []
        server_cpu: list[float] = []  # minus each backend's CPU at the start, plus at the end

        def stamp(n: int) -> None:
            commits[n] = time.time()

        def producer() -> None:
            pid = None
            try:
                pid = self.backend_pid()  # connects before the first event is due
                server_cpu.append(-(backend_cpu(pid) or 0.0))
                while not errors:
                    with lock:
                        n = next(numbers, None)
                    if n is None:
                        return
                    delay = start + n / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        lags[n] = -delay
                    with transaction.atomic():
                        transaction.on_commit(partial(stamp, n))
                        publish(events[n])
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                errors.append(exc)
            finally:
                if pid is not None:
                    server_cpu.append(backend_cpu(pid) or 0.0)
                connection.close()

        threads = [
            threading.Thread(target=producer, daemon=True) for _ in range(self.options["producers"])
        ]
        cpu = time.process_time()
        start = time.monotonic() + 0.2
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        cpu_s = time.process_time() - cpu
        if errors:
            raise errors[0]
        lags.sort()
        return commits, {
            "events": count,
            "threads": len(threads),
            "achieved_rate": round(count / elapsed, 1),
            "lag_p99_ms": round(percentile(lags, 99) * 1000, 2),
            "lag_max_ms": round(lags[-1] * 1000, 2),
            "cpu_ms_per_event": {
                "client": round(cpu_s * 1000 / count, 3),
                "postgres": round(sum(server_cpu) * 1000 / count, 3)
                if backend_cpu(self.backend_pid()) is not None
                else None,
            },
        }

    def collect(self, run: str, count: int, logs: Path) -> dict[str, dict[int, float]]:
        from outbox.bench.handlers import handled_key

        client = streams.get_redis()
        deadline = time.monotonic() + self.options["drain_timeout"]
        groups = self.bench_groups()
        while time.monotonic() < deadline:
            if all(client.hlen(handled_key(run, g)) >= count for g in groups):
                break
            self.check_children(logs)
            time.sleep(0.1)
        return {
            g: {int(n): float(t) for n, t in client.hgetall(handled_key(run, g)).items()}
            for g in groups
        }

    def published_at(self, run: str) -> dict[int, float]:
        """When the relay marked each event of a run published (right after its XADD)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (payload->>'n')::int, extract(epoch FROM published_at)::float8 "
                "FROM outbox_outboxevent WHERE aggregate_type = %s AND payload->>'run' = %s "
                "AND published_at IS NOT NULL",
                [AGGREGATE_TYPE, run],
            )
            return dict(cursor.fetchall())

    def duplicates(self, run: str, group: str) -> int:
        from django.db.models import Count

        from outbox.bench.models import Applied

        return sum(
            row["c"] - 1
            for row in Applied.objects.filter(run=run, group=group)
            .values("n")
            .annotate(c=Count("id"))
            .filter(c__gt=1)
        )

    @staticmethod
    def task_counts(log: Path) -> dict[str, int]:
        """How many tasks of each kind the worker ran (its INFO log has one line per task)."""
        counts: Counter[str] = Counter()
        for line in log.read_text().splitlines():
            if " succeeded in " in line and "Task outbox.tasks." in line:
                name = line.split("Task outbox.tasks.", 1)[1].split("[", 1)[0]
                counts[name] += 1
        return dict(sorted(counts.items()))

    def budget(self, report: dict) -> dict | None:
        """The CPU the pipeline needs at the offered rate, from the per-event costs measured."""
        rows = report.get("latency", {}).get("rows", {})
        if "relay" not in report or "consumers" not in report or not rows:
            return None
        producer_row = rows.get("foreground") or next(iter(rows.values()))

        def ms(cpu: dict) -> float:
            return cpu["client"] + (cpu["postgres"] or 0.0)

        parts = {
            "producer": ms(producer_row["producer"]["cpu_ms_per_event"]),
            "relay": ms(report["relay"]["cpu_ms_per_event"]),
            "consumers": sum(
                ms(g["cpu_ms_per_event"]) for g in report["consumers"]["groups"].values()
            ),
        }
        per_event = sum(parts.values())
        rate = report["latency"]["offered_rate"]
        return {
            "how": "client + PostgreSQL backend CPU per event, from the phases above "
            "(producer from the foreground row); Redis and Celery not counted",
            "ms_per_event": {k: round(v, 3) for k, v in parts.items()},
            "total_ms_per_event": round(per_event, 3),
            "cores_needed_at_offered_rate": round(per_event * rate / 1000, 2),
            "cores": os.cpu_count(),
            "max_rate_on_all_cores": round(os.cpu_count() * 1000 / per_event),
        }

    # --- the table -----------------------------------------------------------

    def print_table(self, report: dict) -> None:
        w = self.stdout.write
        m, p = report["machine"], report["params"]
        w("")
        w(
            f"outbox benchmark: {m['cores']} cores, Python {m['python']}, "
            f"PostgreSQL {m['postgres'].split()[0]} "
            f"(synchronous_commit={m['postgres_settings']['synchronous_commit']}), "
            f"Redis {m['redis']}; load average at start {m['load_average_at_start'][0]}"
        )
        w(
            f"payload ~{p['payload_bytes']} B, partitions {p['partitions']}, "
            f"groups {', '.join(p['all_groups'])}; wall {p['wall_s']} s"
        )

        def cpu(figures: dict) -> str:
            c = figures["cpu_ms_per_event"]
            server = "-" if c["postgres"] is None else f"{c['postgres']:.3f}"
            return f"{c['client']:.3f} + {server}"

        if "relay" in report or "consumers" in report:
            w("")
            w(f"{'throughput':<34}{'batch':>6}{'events':>8}{'ev/s':>8}  {'cpu ms/ev':<15} runs")
        if "relay" in report:
            for key, label in (
                ("relay", "relay (relay_partition)"),
                ("raw", "raw psycopg + redis-py"),
            ):
                r = report[key]
                runs = " ".join(str(x) for x in r["runs_ev_s"])
                w(
                    f"{label:<34}{r['batch_size']:>6}{r['events']:>8}{r['median_ev_s']:>8}  "
                    f"{cpu(r):<15} {runs}"
                )
            pairs = " ".join(f"{r:.2f}" for r in report["pair_ratios"])
            w(
                f"{'relay / raw (medians)':<34}{'':>14}{report['ratio']:>8.2f}  target >= 0.80; "
                f"run by run: {pairs}"
            )
        if "consumers" in report:
            c = report["consumers"]
            for group, figures in c["groups"].items():
                w(
                    f"{'consume ' + group:<34}{c['batch_size']:>6}{c['events']:>8}"
                    f"{figures['ev_s']:>8}  {cpu(figures):<15}"
                )
        if "relay" in report or "consumers" in report:
            w(
                "  (cpu ms/ev: this process + its PostgreSQL backend; ev/s of relay and raw: medians)"
            )
        if "latency" in report:
            lat = report["latency"]
            w("")
            w(
                f"commit-to-handled latency, ms, at {lat['offered_rate']:g} ev/s offered "
                f"for {lat['duration_s']:g} s"
            )
            w(
                f"{'path / group':<24}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
                f"{'handled':>9}{'lost':>6}{'dup':>5}"
            )
            for mode, row in lat["rows"].items():
                for group, g in row["groups"].items():
                    w(
                        f"{mode + ' / ' + group:<24}{g['p50']:>8.1f}{g['p95']:>8.1f}"
                        f"{g['p99']:>8.1f}{g['max']:>8.1f}{g['handled']:>9}{g['lost']:>6}"
                        f"{g['duplicates']:>5}"
                    )
            for mode, row in lat["rows"].items():
                prod = row["producer"]
                w(f"  {mode}: {row['how']}")
                w(
                    f"  {mode}: producer {prod['achieved_rate']} ev/s ({prod['threads']} threads, "
                    f"lag p99 {prod['lag_p99_ms']} ms, {cpu(prod)} ms cpu/ev); "
                    f"pipeline {row['pipeline_cpu_ms_per_event']} ms cpu/ev; "
                    f"load average after {row['load_average_after']}"
                )
                stages = [
                    f"commit->XADD p50 {row['relay_stage_ms']['p50']:.1f} "
                    f"p99 {row['relay_stage_ms']['p99']:.1f}"
                ]
                for group, g in row["groups"].items():
                    c = g["consumer_stage_ms"]
                    stages.append(f"XADD->{group} p50 {c['p50']:.1f} p99 {c['p99']:.1f}")
                w(f"  {mode}: stages (ms): {'; '.join(stages)}")
                if row.get("wake_on_commit_failures"):
                    w(
                        f"  {mode}: wake on commit failed {row['wake_on_commit_failures']} "
                        f"times: {row['wake_on_commit_error']}"
                    )
                if row.get("celery_tasks"):
                    tasks = ", ".join(f"{k} {v}" for k, v in row["celery_tasks"].items())
                    w(f"  {mode}: tasks run: {tasks}")
        if "cpu_budget" in report:
            b = report["cpu_budget"]
            parts = ", ".join(f"{k} {v:.2f}" for k, v in b["ms_per_event"].items())
            w(
                f"  cpu needed per event: {parts} = {b['total_ms_per_event']:.2f} ms, i.e. "
                f"{b['cores_needed_at_offered_rate']} of {b['cores']} cores at the offered rate "
                f"(all cores would carry ~{b['max_rate_on_all_cores']} ev/s)"
            )
        if "baselines" in report:
            b = report["baselines"]
            x, t = b["xadd_to_xreadgroup_ms"], b["commit_two_rows_ms"]
            w("")
            w(f"{'baselines, ms':<34}{'p50':>8}{'p99':>8}")
            w(f"{'XADD -> XREADGROUP (blocked)':<34}{x['p50']:>8.3f}{x['p99']:>8.3f}")
            w(
                f"{'2-row transaction (psycopg)':<34}{t['transaction']['p50']:>8.3f}"
                f"{t['transaction']['p99']:>8.3f}"
            )
            w(
                f"{'  of which COMMIT':<34}{t['commit_only']['p50']:>8.3f}"
                f"{t['commit_only']['p99']:>8.3f}"
            )
