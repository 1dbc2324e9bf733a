"""The benchmark's phases, and the order a run goes through them.

1. ``baselines``: XADD-to-XREADGROUP delivery, a two-row commit;
2. ``relay``: relay throughput against a raw psycopg + redis-py loop, alternated;
3. ``consumers``: consumer throughput and CPU per handler run, per bench group;
4. ``worker`` and ``foreground``: commit-to-handled latency at each offered rate,
   through a real Celery worker and beat, then through the foreground commands;
5. ``flat-cost`` (only when asked): relay and consumers again with a million
   published events retained, as ratios to the figures without them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from bench.outbox_app import report as reporting
from bench.outbox_app.phases import baselines, consumers, flat_cost, latency, relay
from bench.outbox_app.workspace import (
    THROUGHPUT_PARTITION,
    Workspace,
    all_groups,
    bench_groups,
    order_payload,
)

PHASES = ("baselines", "relay", "consumers", "worker", "foreground", "flat-cost")
DEFAULT_PHASES = PHASES[:-1]


@dataclass(frozen=True)
class Plan:
    phases: tuple[str, ...]
    events: int = 20_000
    runs: int = 5
    consumer_events: int = 10_000
    rates: tuple[float, ...] = (200.0, 500.0)
    duration: float = 15.0
    producers: int = 4
    drain_timeout: float = 30.0
    retained: int = 1_000_000
    flat_runs: int = 3


def run(plan: Plan, say: Callable[[str], None]) -> dict:
    """Run the planned phases in order; always removes what it wrote. Returns the report."""
    ws = Workspace(say)
    ws.check_settings()
    ws.check_services()
    started = time.monotonic()
    current = ws.prepare()
    report: dict = {
        "machine": ws.machine(),
        "params": {
            **{k: v for k, v in plan.__dict__.items() if k != "phases"},
            "phases": list(plan.phases),
            "relay_batch_size": settings.OUTBOX_RELAY_BATCH_SIZE,
            "consumer_batch_size": settings.OUTBOX_CONSUMER_BATCH_SIZE,
            "payload_bytes": len(json.dumps(order_payload("relay-1", 1, 123456))),
            "partitions": current.partitions,
            "throughput_partition": THROUGHPUT_PARTITION,
            "stream_prefix": settings.OUTBOX_STREAM_PREFIX,
            "conn_max_age": settings.DATABASES["default"].get("CONN_MAX_AGE", 0),
            "groups": bench_groups(),
            "all_groups": all_groups(),
        },
    }
    timings: dict[str, float] = {}
    report["params"]["phase_s"] = timings

    def timed(name: str, work: Callable[[], object]) -> object:
        began = time.monotonic()
        try:
            return work()
        finally:
            timings[name] = round(time.monotonic() - began, 1)

    try:
        if "baselines" in plan.phases:
            say("baselines ...")
            report["baselines"] = timed("baselines", baselines.run)
        if "relay" in plan.phases:
            report.update(timed("relay", lambda: relay.run(ws, events=plan.events, runs=plan.runs)))
        if "consumers" in plan.phases:
            say("consumers ...")
            report["consumers"] = timed(
                "consumers", lambda: consumers.run(ws, events=plan.consumer_events)
            )
        paths = {}
        for path in latency.PATHS:
            if path in plan.phases:
                paths[path] = timed(
                    path,
                    lambda path=path: latency.run(
                        ws,
                        path=path,
                        rates=list(plan.rates),
                        duration=plan.duration,
                        producers=plan.producers,
                        drain_timeout=plan.drain_timeout,
                    ),
                )
        if paths:
            report["latency"] = {"duration_s": plan.duration, "paths": paths}
        if "flat-cost" in plan.phases:
            report["flat_cost"] = timed(
                "flat-cost",
                lambda: flat_cost.run(
                    ws,
                    retained=plan.retained,
                    events=plan.events,
                    consumer_events=plan.consumer_events,
                    runs=plan.flat_runs,
                ),
            )
    finally:
        ws.cleanup()
    report["params"]["wall_s"] = round(time.monotonic() - started, 1)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    budget = reporting.cpu_budget(report)
    if budget:
        report["cpu_budget"] = budget
    return report


def lost_and_duplicated(report: dict) -> tuple[int, int]:
    """Events of the latency phases never handled, and applied twice, over all groups."""
    lost = dup = 0
    for path in report.get("latency", {}).get("paths", {}).values():
        for row in path["rates"].values():
            for group in row["groups"].values():
                lost += group["lost"]
                dup += group["duplicates"]
    return lost, dup
