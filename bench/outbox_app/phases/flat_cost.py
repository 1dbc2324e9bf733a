"""Flat cost: relay and consumer throughput again with a long history kept in the outbox.

A real log keeps published events for ``OUTBOX_RETENTION_DAYS``, and an inbox row
per event and subscribed group. The phase measures relay and consumer
throughput on the table as the other phases leave it (only the run's own rows),
then fills it with ``retained`` published events spread over the past six days
(COPY, time-ordered event ids as ``publish()`` makes them, every slot) and one
inbox row per event for each bench group (COPY too), vacuums and analyses both
tables (as autovacuum would have by then), checkpoints, measures again, and
removes the history. The figures are the ratios full / empty.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg

from bench.outbox_app.events import OrderPlaced
from bench.outbox_app.measuring import Stopwatch, cpu_ms, median
from bench.outbox_app.phases import consumers, relay
from bench.outbox_app.workspace import (
    RETAINED_TYPE,
    Workspace,
    bench_groups,
    chunks,
    conninfo,
    order_payload,
)
from outbox import context
from outbox.layout import slot_for

HISTORY_S = 6 * 24 * 3600  # within the default retention of seven days
FIRST_RETAINED_ID = 10_000_000
COPY_RETAINED = (
    "COPY outbox_outboxevent (event_id, event_type, version, aggregate_type, aggregate_id, "
    "aggregate_version, slot, payload, headers, occurred_at, published_at, attempts, last_error) "
    "FROM STDIN"
)
COPY_INBOX = 'COPY outbox_inboxentry ("group", event_id, event_type, processed_at) FROM STDIN'


def run(ws: Workspace, *, retained: int, events: int, consumer_events: int, runs: int) -> dict:
    sizes = dict(events=events, consumer_events=consumer_events, runs=runs)
    before = measure(ws, "empty, before", **sizes)
    ws.say(f"flat cost: filling the outbox with {retained:,} published events ...")
    try:
        with Stopwatch() as watch:
            fill(retained)
            ws.vacuum("outbox_outboxevent", "outbox_inboxentry")
            checkpoint()
        table = table_sizes()
        full = measure(ws, "full", **sizes)
    finally:
        ws.say("flat cost: removing the retained events ...")
        ws.remove_events()
    # Measured again: the machine's load drifts, the empty figure is their mean.
    after = measure(ws, "empty, after", **sizes)
    empty = {
        key: {name: round((value + after[key][name]) / 2, 4) for name, value in before[key].items()}
        for key in ("ev_s", "cpu_ms_per_event")
    }
    ratios = {
        key: {name: round(full[key][name] / value, 3) for name, value in empty[key].items()}
        for key in ("ev_s", "cpu_ms_per_event")
    }
    return {
        "how": "relay and consumer phases on the table without the retained history, with "
        "it (published events with inbox rows for both bench groups), and without it again",
        "retained_events": retained,
        "retained_inbox_rows": retained * len(bench_groups()),
        "fill_s": round(watch.seconds, 1),
        "table_sizes": table,
        "empty_before": before,
        "full": full,
        "empty_after": after,
        "empty": empty,
        "ratios": ratios,
        "target": "ev/s ratio >= 0.85 and cpu ratio <= 1.15 (within 15 %)",
    }


def measure(ws: Workspace, label: str, *, events: int, consumer_events: int, runs: int) -> dict:
    """Relay runs (median) and one consumer run per group: events/s and CPU ms per event."""
    rates, cpu = [], []
    plans: list[str] = []
    for i in range(runs):
        ws.say(f"flat cost ({label}): relay run {i + 1}/{runs} ...")
        seconds, meter = relay.relay_run(ws, f"flat-{i + 1}", events, plans=plans)
        rates.append(events / seconds)
        cpu.append(cpu_ms(meter.per_event_ms(events)))
    ws.say(f"flat cost ({label}): consumers ...")
    consumed = consumers.run(ws, events=consumer_events, run_name="flat")
    groups = consumed["groups"]
    return {
        "relay_runs_ev_s": [round(r) for r in rates],
        "relay_select_plan": plans[0],
        "ev_s": {"relay": round(median(rates))} | {g: f["ev_s"] for g, f in groups.items()},
        # client + PostgreSQL backend: the cost per event, which others' load moves less
        "cpu_ms_per_event": {"relay": round(median(cpu), 4)}
        | {g: round(cpu_ms(f["cpu_ms_per_event"]), 4) for g, f in groups.items()},
    }


def event_id(n: int, millis: int) -> uuid.UUID:
    """The n-th retained event's id: ``publish()``'s layout (time first), unique by n."""
    value = millis << 80 | n
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def _history(count: int) -> Iterator[tuple[int, uuid.UUID, float]]:
    """(n, event id, when it was published) of each retained event, oldest first."""
    start = time.time() - HISTORY_S
    step = HISTORY_S / count
    for n in range(count):
        at = start + n * step
        yield n, event_id(n, int(at * 1000)), at


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def _event_lines(count: int) -> Iterator[str]:
    headers = json.dumps(context.current().headers())
    for n, eid, at in _history(count):
        order_id = FIRST_RETAINED_ID + n
        aggregate_id = str(order_id)
        payload = json.dumps(order_payload("retained", n, order_id))
        occurred, published = _iso(at), _iso(at + 0.005)
        slot = slot_for(RETAINED_TYPE, aggregate_id)
        yield (
            f"{eid}\t{OrderPlaced.name}\t{OrderPlaced.version}\t{RETAINED_TYPE}\t{aggregate_id}"
            f"\t1\t{slot}\t{payload}\t{headers}\t{occurred}\t{published}\t1\t\n"
        )


def _inbox_lines(count: int, group: str) -> Iterator[str]:
    for _n, eid, at in _history(count):
        yield f"{group}\t{eid}\t{OrderPlaced.name}\t{_iso(at + 0.02)}\n"


def fill(count: int) -> None:
    """COPY the retained history into the outbox and the bench groups' inboxes (one commit)."""
    with psycopg.connect(**conninfo()) as conn, conn.cursor() as cursor:
        with cursor.copy(COPY_RETAINED) as copy:
            for chunk in chunks(_event_lines(count)):
                copy.write(chunk)
        for group in bench_groups():
            with cursor.copy(COPY_INBOX) as copy:
                for chunk in chunks(_inbox_lines(count, group)):
                    copy.write(chunk)
        conn.commit()


def checkpoint() -> None:
    """Write the fill's dirty pages out now rather than during the measurement (superuser)."""
    try:
        with psycopg.connect(**conninfo(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass  # then the server's own checkpoint may fall into the measurement


def table_sizes() -> dict[str, str]:
    with psycopg.connect(**conninfo()) as conn:
        return {
            table: conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size(%s::regclass))", [table]
            ).fetchone()[0]
            for table in ("outbox_outboxevent", "outbox_inboxentry")
        }
