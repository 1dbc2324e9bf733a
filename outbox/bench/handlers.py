"""Two groups with the same handler, so a run shows how groups share one stream.

The handler makes one INSERT inside the runtime's transaction (with the inbox
row). For tracked events it also records, once that transaction has committed,
the time on the machine's monotonic clock (shared by all processes on Linux) in
a Redis hash, so the benchmark can subtract the producer's commit time.
"""

import time
from functools import partial

from django.db import transaction

from outbox import ConsumerGroup, Message, streams
from outbox.bench.models import Applied

GROUPS = ("bench-a", "bench-b")
consumers = {name: ConsumerGroup(name) for name in GROUPS}


def handled_key(run: str, group: str) -> str:
    return streams.key("bench", "handled", run, group)


def _stamp(run: str, group: str, n: int) -> None:
    streams.get_redis().hset(handled_key(run, group), str(n), repr(time.time()))


def _apply(group: str, message: Message) -> None:
    payload = message.payload
    Applied.objects.create(
        group=group, event_id=message.event_id, run=payload["run"], n=payload["n"]
    )
    if payload.get("track"):
        transaction.on_commit(partial(_stamp, payload["run"], group, payload["n"]))


@consumers["bench-a"].handler("bench.OrderPlaced")
def bench_a_order_placed(message: Message) -> None:
    _apply("bench-a", message)


@consumers["bench-b"].handler("bench.OrderPlaced")
def bench_b_order_placed(message: Message) -> None:
    _apply("bench-b", message)
