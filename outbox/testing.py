"""Helpers for tests: run the relay and every consumer in-process until nothing moves."""

from __future__ import annotations

import json
import time
import uuid

from django.utils import timezone

from outbox import streams
from outbox.consumer import apply, consume
from outbox.message import Message
from outbox.registry import registry
from outbox.relay import relay_partition


def drain(*, groups: list[str] | None = None, max_rounds: int = 50, timeout_s: float = 30.0) -> int:
    """Relay and consume until a whole round moves nothing; returns events handled.

    Raises ``AssertionError`` if it is still moving after ``max_rounds`` or
    ``timeout_s``: the system did not settle.
    """
    streams.ensure_groups()
    names = groups or sorted(registry.groups)
    handled = 0
    deadline = time.monotonic() + timeout_s
    for _ in range(max_rounds):
        moved = 0
        for partition in streams.partitions():
            moved += relay_partition(partition).published
            for group in names:
                result = consume(group, partition)
                moved += result.acked
                handled += result.handled
        if moved == 0:
            return handled
        if time.monotonic() > deadline:
            break
    raise AssertionError("the outbox did not settle")


def deliver(
    group: str,
    event_type: str,
    payload: dict,
    *,
    aggregate_type: str = "test",
    aggregate_id: str | int = "1",
    version: int = 1,
    event_id: uuid.UUID | None = None,
) -> bool:
    """Apply one event to a group's handler as the consumer would, without a stream.

    For a test of one app's handlers with another app's event, whose class it may
    not import. The payload goes through a JSON round trip first. Returns False
    when the group had already applied ``event_id``; raises what the handler raises.
    """
    handler = registry.groups[group].handlers[event_type]
    message = Message(
        event_id=event_id or uuid.uuid4(),
        type=event_type,
        version=version,
        aggregate_type=aggregate_type,
        aggregate_id=str(aggregate_id),
        aggregate_version=1,
        sequence=0,
        occurred_at=timezone.now(),
        payload=json.loads(json.dumps(payload)),
    )
    return apply(group, message, handler)
