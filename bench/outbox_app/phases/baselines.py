"""The machine's floors, for context: Redis delivery to a blocked reader, a two-row commit."""

from __future__ import annotations

import threading
import time

import psycopg
import redis
from django.conf import settings

from bench.outbox_app.measuring import summary_ms
from bench.outbox_app.workspace import conninfo
from outbox import streams


def run() -> dict:
    return {
        "xadd_to_xreadgroup_ms": xadd_delivery(samples=1000),
        "commit_two_rows_ms": two_row_commit(samples=500),
    }


def xadd_delivery(*, samples: int) -> dict:
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
    time.sleep(0.05)  # the reader is in XREADGROUP by then; a late one only adds a sample
    for _ in range(samples):
        writer.xadd(stream, {"t": repr(time.monotonic())})
        time.sleep(0.001)
    thread.join(timeout=10)
    writer.delete(stream)
    writer.close()
    reader.close()
    return summary_ms(delays)


def two_row_commit(*, samples: int) -> dict:
    """BEGIN, two INSERTs, COMMIT with psycopg: the floor of any publishing transaction."""
    whole, commit = [], []
    with psycopg.connect(**conninfo()) as conn:
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
