"""Two groups with the same work, so a run shows how groups share one stream.

Each handler makes one INSERT inside the runtime's transaction (with the inbox
row): bench-a through the ORM (``Applied.objects.create``), bench-b as one SQL
statement. For tracked events (the latency phase) it also notes the wall-clock time
once that transaction has committed (``transaction.on_commit``, so a rolled-back
attempt notes nothing). A thread of the process writes the notes to a Redis hash
per run and group every few milliseconds, in one pipeline: the consumer itself
makes no Redis round trip for the benchmark's sake.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from functools import partial

import redis
from django.db import connection, transaction

from bench.outbox_app.models import Applied
from outbox import ConsumerGroup, Message, streams

logger = logging.getLogger(__name__)

GROUPS = ("bench-a", "bench-b")
consumers = {name: ConsumerGroup(name) for name in GROUPS}
FLUSH_INTERVAL_S = 0.02


def handled_key(run: str, group: str) -> str:
    """The Redis hash ``n -> commit time`` of the events a group handled in a run."""
    return streams.key("bench", "handled", run, group)


class Stamps:
    """Commit times noted by the handlers, written to Redis by a thread of their process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[tuple[str, str, str]] = []
        self.owner: int | None = None  # the process whose thread flushes (a fork needs its own)
        self.idle = threading.Event()  # never set: the flushing thread lives with its process

    def note(self, key: str, n: int) -> None:
        stamp = repr(time.time())
        with self.lock:
            self.pending.append((key, str(n), stamp))
            if self.owner != os.getpid():
                self.owner = os.getpid()
                threading.Thread(
                    target=self._flush_forever, name="bench-stamps", daemon=True
                ).start()

    def _flush_forever(self) -> None:
        client = streams.get_redis()
        while not self.idle.wait(FLUSH_INTERVAL_S):
            with self.lock:
                batch, self.pending = self.pending, []
            if not batch:
                continue
            pipe = client.pipeline(transaction=False)
            for key, n, stamp in batch:
                pipe.hset(key, n, stamp)
            try:
                pipe.execute()
            except redis.RedisError as exc:
                logger.warning("bench: writing %s commit time(s) failed: %s", len(batch), exc)
                with self.lock:
                    self.pending[:0] = batch  # again at the next flush


stamps = Stamps()


# bench-b's handler writes the same row with one SQL statement, as a handler tuned for
# speed would: set beside bench-a's ORM create, the two show what is the runtime's cost
# and what is the ORM's.
INSERT_APPLIED = (
    'INSERT INTO outbox_bench_applied ("group", event_id, run, n, created_at) '
    "VALUES (%s, %s, %s, %s, now())"
)


def _apply(group: str, message: Message, *, orm: bool) -> None:
    payload = message.payload
    if orm:
        Applied.objects.create(
            group=group, event_id=message.event_id, run=payload["run"], n=payload["n"]
        )
    else:
        with connection.cursor() as cursor:
            cursor.execute(INSERT_APPLIED, [group, message.event_id, payload["run"], payload["n"]])
    if payload.get("track"):
        transaction.on_commit(
            partial(stamps.note, handled_key(payload["run"], group), payload["n"])
        )


@consumers["bench-a"].handler("bench.OrderPlaced")
def bench_a_order_placed(message: Message) -> None:
    _apply("bench-a", message, orm=True)


@consumers["bench-b"].handler("bench.OrderPlaced")
def bench_b_order_placed(message: Message) -> None:
    _apply("bench-b", message, orm=False)
