"""Relay throughput against a raw psycopg + redis-py loop doing the same work.

Both move freshly bulk-inserted rows of one partition (``THROUGHPUT_PARTITION``)
to its stream. Raw and relay runs alternate, and which of the two goes first
alternates too, so a drift in the machine's load favours neither.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import redis
from django.conf import settings
from django.db import connection

from bench.outbox_app.measuring import CpuMeter, Stopwatch, median
from bench.outbox_app.workspace import (
    THROUGHPUT_PARTITION,
    BenchError,
    Workspace,
    backend_pid,
    conninfo,
)
from outbox import layout, streams
from outbox.message import encode_row
from outbox.relay import MARK_PUBLISHED, batch_query

Run = tuple[float, CpuMeter]

RELAY_HOW = (
    f"outbox.relay.relay_partition({THROUGHPUT_PARTITION}) until it moves nothing "
    "(lease, SELECT, one Lua script: marker check and XADDs, UPDATE, COMMIT)"
)
RAW_HOW = "psycopg + redis-py, no Django: relay.batch_query, pipelined XADD, MARK_PUBLISHED, COMMIT"


def run(ws: Workspace, *, events: int, runs: int) -> dict:
    # Warm both paths (connections, statement caches) on a small backlog first.
    relay_run(ws, "warm-relay", 1000)
    raw_run(ws, "warm-raw", 1000)
    plans: list[str] = []
    relay_runs, raw_runs = alternate(
        ws, events=events, runs=runs, label="relay vs raw", plans=plans
    )
    relay = throughput(relay_runs, events, RELAY_HOW)
    relay["select_plan"] = plans[0]
    raw = throughput(raw_runs, events, RAW_HOW)
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


def alternate(
    ws: Workspace, *, events: int, runs: int, label: str, plans: list[str]
) -> tuple[list[Run], list[Run]]:
    relay_runs: list[Run] = []
    raw_runs: list[Run] = []
    for i in range(runs):
        ws.say(f"{label}, run {i + 1}/{runs} ...")
        if i % 2 == 0:
            raw_runs.append(raw_run(ws, f"raw-{i + 1}", events))
            relay_runs.append(relay_run(ws, f"relay-{i + 1}", events, plans=plans))
        else:
            relay_runs.append(relay_run(ws, f"relay-{i + 1}", events, plans=plans))
            raw_runs.append(raw_run(ws, f"raw-{i + 1}", events))
    return relay_runs, raw_runs


def throughput(runs: list[Run], count: int, how: str) -> dict:
    rates = [count / seconds for seconds, _ in runs]
    cpu = [meter.per_event_ms(count) for _, meter in runs]
    server = [c["postgres"] for c in cpu if c["postgres"] is not None]
    return {
        "how": how,
        "partition": THROUGHPUT_PARTITION,
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


def select_plan() -> str:
    """How PostgreSQL plans the relay's SELECT as the relay sends it (Django's cursor binds
    the parameters client-side, so the planner sees the partition and the limit)."""
    current = layout.current()
    sql, params = batch_query(current, [THROUGHPUT_PARTITION], settings.OUTBOX_RELAY_BATCH_SIZE)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        lines = [row[0].strip().removeprefix("->").strip() for row in cursor.fetchall()]
    return next((line.split("  (")[0] for line in lines if "on outbox_outboxevent" in line), "?")


def relay_run(ws: Workspace, run: str, count: int, *, plans: list[str] | None = None) -> Run:
    """Time the relay's public one-shot entry point until it has moved ``count`` rows."""
    ws.copy_events(run, count)
    ws.vacuum()
    if plans is not None:
        plans.append(select_plan())
    with CpuMeter(backend_pid()) as cpu, Stopwatch() as watch:
        moved = ws.relay_all()
    if moved != count:
        raise BenchError(f"the relay moved {moved} of {count} rows")
    ws.reset_log()
    return watch.seconds, cpu


def raw_run(ws: Workspace, run: str, count: int) -> Run:
    """The relay's work without Django: the same statements, the same entry fields."""
    ws.copy_events(run, count)
    ws.vacuum()
    current = layout.current()
    batch = settings.OUTBOX_RELAY_BATCH_SIZE
    select, params = batch_query(current, [THROUGHPUT_PARTITION], batch)
    stream = streams.key("raw", THROUGHPUT_PARTITION)
    client = redis.Redis.from_url(settings.REDIS_URL)
    moved = 0
    with psycopg.connect(**conninfo()) as conn:
        client.ping()
        with CpuMeter(conn.info.backend_pid) as cpu, Stopwatch() as watch:
            while True:
                with conn.cursor() as cursor:
                    cursor.execute(select, params)
                    rows = cursor.fetchall()
                    if rows:
                        pipe = client.pipeline(transaction=False)
                        for row in rows:
                            pipe.xadd(stream, encode_row(row[:-1]))
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
        raise BenchError(f"the raw loop moved {moved} of {count} rows")
    ws.reset_log()
    return watch.seconds, cpu
