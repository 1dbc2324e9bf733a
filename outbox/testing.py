"""Helpers for tests: run the relay and every consumer in-process until nothing moves."""

from __future__ import annotations

import time

from outbox import streams
from outbox.consumer import consume
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
