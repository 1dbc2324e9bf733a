"""The outbox's Prometheus metrics (prometheus-client).

Counters and histograms are updated where things happen: in the relay and in
the consumers, after their transaction committed. Gauges of the backlog and of
each group's lag are read when scraped (``OutboxCollector``), from PostgreSQL
and Redis, so no process has to keep them up to date.

With ``PROMETHEUS_MULTIPROC_DIR`` set (to the same empty folder) in every
process before it starts, the counts of the web's and the worker's processes
add up in ``scrape_registry()``; without it each process counts its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

RELAYED = Counter(
    "outbox_events_relayed_total", "Events the relay appended to the streams, by type.", ["type"]
)
RELAY_BATCH_SIZE = Histogram(
    "outbox_relay_batch_size",
    "Events per relay batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
RELAY_BATCH_SECONDS = Histogram(
    "outbox_relay_batch_seconds",
    "Time a relay batch took, SELECT to commit.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
HANDLED = Counter(
    "outbox_events_handled_total",
    "Events a group's handler applied (its transaction committed), by group and type.",
    ["group", "type"],
)
RETRIED = Counter(
    "outbox_events_retried_total",
    "Handler failures that will be tried again, by group and type.",
    ["group", "type"],
)
DEAD_LETTERED = Counter(
    "outbox_events_dead_lettered_total",
    "Events that became dead letters, by group, type and why "
    "(malformed, unknown_type, too_new, parked, schema, handler).",
    ["group", "type", "reason"],
)
COMMIT_TO_HANDLED = Histogram(
    "outbox_commit_to_handled_seconds",
    "From an event's publication (in its transaction) to a group's commit of its handler.",
    ["group"],
    buckets=LATENCY_BUCKETS,
)


class OutboxCollector(Collector):
    """Backlog and lag, read at scrape time (``outbox.status.backlog``: nothing that counts
    the whole log)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from outbox.status import backlog

        current = backlog()
        yield GaugeMetricFamily(
            "outbox_unpublished_events", "Committed events not yet relayed.", current["unpublished"]
        )
        yield GaugeMetricFamily(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest event not yet relayed (0 when none).",
            current["oldest_unpublished_age_s"],
        )
        yield GaugeMetricFamily(
            "outbox_dead_letters_open", "Dead letters not yet retried.", current["dead_letters"]
        )
        yield GaugeMetricFamily(
            "outbox_redis_up", "Whether Redis answered the scrape.", current["redis"] == "ok"
        )
        pending = GaugeMetricFamily(
            "outbox_group_pending", "Entries read but not yet acknowledged.", labels=["group"]
        )
        lag = GaugeMetricFamily(
            "outbox_group_lag", "Entries in the streams not yet read.", labels=["group"]
        )
        for name, row in current["groups"].items():
            pending.add_metric([name], row["pending"])
            lag.add_metric([name], row["lag"])
        yield pending
        yield lag


def scrape_registry() -> CollectorRegistry:
    """A registry with every process's counts (multiprocess mode) and the outbox's gauges."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
        registry.register(OutboxCollector())
        return registry
    from prometheus_client import REGISTRY  # this process's own counts

    global _registered
    if not _registered:
        REGISTRY.register(OutboxCollector())
        _registered = True
    return REGISTRY


_registered = False
