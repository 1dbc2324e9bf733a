"""Consumer throughput per benchmark group, with its CPU per handler run."""

from __future__ import annotations

from django.conf import settings

from bench.outbox_app.measuring import CpuMeter, Stopwatch
from bench.outbox_app.workspace import (
    THROUGHPUT_PARTITION,
    BenchError,
    Workspace,
    backend_pid,
    bench_groups,
)
from outbox.consumer import consume

HOW = (
    f"outbox.consumer.consume(group, {THROUGHPUT_PARTITION}) until drained, one group after "
    "the other; per batch one transaction with one multi-row inbox insert; the handler makes "
    "one INSERT"
)


def run(ws: Workspace, *, events: int, run_name: str = "consume") -> dict:
    """``events`` relayed to the partition's stream, then each bench group drains it."""
    from bench.outbox_app.models import Applied

    ws.copy_events(run_name, events)
    ws.vacuum()
    moved = ws.relay_all()
    if moved != events:
        raise BenchError(f"the relay moved {moved} of {events} rows")
    # Start alike, and give autovacuum no reason to run during the measurement.
    ws.vacuum("outbox_outboxevent", "outbox_inboxentry", "outbox_bench_applied")
    groups = {}
    for group in bench_groups():
        handled = 0
        with CpuMeter(backend_pid()) as cpu, Stopwatch() as watch:
            while True:
                result = consume(group, THROUGHPUT_PARTITION, max_seconds=300)
                if result.busy:
                    raise BenchError(f"another consumer holds {group}'s lease")
                if result.dead_lettered:
                    raise BenchError(f"{group} dead-lettered {result.dead_lettered} event(s)")
                handled += result.handled
                if not result.acked:
                    break
        applied = Applied.objects.filter(group=group, run=run_name).count()
        if handled != events or applied != events:
            raise BenchError(f"{group} handled {handled} and applied {applied} of {events}")
        groups[group] = {
            "ev_s": round(events / watch.seconds),
            "seconds": round(watch.seconds, 3),
            # One handler run per event for each group.
            "cpu_ms_per_event": cpu.per_event_ms(events),
        }
    Applied.objects.filter(run=run_name).delete()
    ws.reset_log()
    return {
        "how": HOW,
        "partition": THROUGHPUT_PARTITION,
        "events": events,
        "batch_size": settings.OUTBOX_CONSUMER_BATCH_SIZE,
        "groups": groups,
    }
