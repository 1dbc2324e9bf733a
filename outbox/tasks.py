"""Celery tasks and the worker's readers.

The relay and the consumer groups run as readers (``outbox.runtime``) inside
every pool process of ``celery -A shop worker``: they are started when a pool
process starts and stopped, leases given back, when it stops. The tasks here
are the beat's safety net and housekeeping: ``poll_task`` works whatever
partition no reader holds (a worker started without readers, or all of them
gone), so no lost wake-up and no stopped reader ever strands an event.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task, signals

from outbox import heartbeat, lease, maintenance, streams
from outbox.conf import conf
from outbox.consumer import consume, lease_name
from outbox.registry import registry
from outbox.relay import RELAY_LEASE, relay_partition
from outbox.runtime import Runtime

logger = logging.getLogger(__name__)

_runtime: Runtime | None = None
_heartbeat: heartbeat.Heartbeat | None = None


@shared_task(name="outbox.tasks.poll")
def poll_task() -> int:
    """Relay and consume every partition no one holds; returns how many events moved."""
    names = {RELAY_LEASE: None, **{lease_name(group): group for group in registry.groups}}
    busy = lease.taken(names)
    moved = 0
    for partition in streams.partitions():
        if (RELAY_LEASE, partition) not in busy:
            moved += relay_partition(partition, max_seconds=1.0).published
    for partition in streams.partitions():
        for name, group in names.items():
            if group is not None and (name, partition) not in busy:
                moved += consume(group, partition, max_seconds=1.0).acked
    if moved:
        logger.info("poll moved %s event(s) that no reader had taken", moved)
    # Readiness counts a partition no reader holds as served while beat polls it.
    streams.get_redis().set(streams.key("beat", "polled"), repr(time.time()))
    return moved


@shared_task(name="outbox.tasks.trim_streams")
def trim_streams_task() -> int:
    return maintenance.trim_streams()


@shared_task(name="outbox.tasks.prune")
def prune_task() -> int:
    return maintenance.prune(retention_days=conf.RETENTION_DAYS)


# --- the readers' lifetime in the worker ---------------------------------------------------


def start_readers() -> Runtime | None:
    """Start this process's readers (once); None when ``OUTBOX_READERS`` is off."""
    global _runtime, _heartbeat
    if not conf.READERS:
        return None
    if _runtime is None or not _runtime.alive():
        _runtime = Runtime()
        _runtime.start()
        if _heartbeat is not None:
            _heartbeat.stop()
        _heartbeat = heartbeat.Heartbeat(_runtime)
        _heartbeat.start()
    return _runtime


def stop_readers(timeout: float = 10.0) -> None:
    global _runtime, _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None
    if _runtime is not None:
        _runtime.stop(timeout)
        _runtime = None


_pool = {"prefork": True}


@signals.worker_init.connect
def _note_pool(sender: Any = None, **_: Any) -> None:
    pool = getattr(sender, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    _pool["prefork"] = "prefork" in str(name) or not name


@signals.worker_process_init.connect
def _start_in_pool_process(**_: Any) -> None:
    start_readers()


@signals.worker_process_shutdown.connect
def _stop_in_pool_process(**_: Any) -> None:
    stop_readers()


@signals.worker_ready.connect
def _start_without_pool_processes(**_: Any) -> None:
    if not _pool["prefork"]:  # solo, threads...: the worker's own process runs them
        start_readers()


@signals.worker_shutdown.connect
def _stop_without_pool_processes(**_: Any) -> None:
    if not _pool["prefork"]:
        stop_readers()
