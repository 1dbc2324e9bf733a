"""Who or what is causing the events published right now.

The API sets the actor and correlation id per request; the consumer sets the
causation (the event being handled) and carries its correlation id along, so
every event records the chain that led to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Cause:
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None

    def headers(self) -> dict[str, str]:
        return {
            "correlation_id": self.correlation_id or str(uuid.uuid4()),
            "causation_id": self.causation_id or "",
            "actor": self.actor or "system",
        }


_current: ContextVar[Cause] = ContextVar("outbox_cause", default=Cause())  # noqa: B039 - Cause is frozen


def current() -> Cause:
    return _current.get()


@contextmanager
def caused_by(**changes: str | None) -> Iterator[Cause]:
    """Within the block, published events carry these header values."""
    token = _current.set(replace(_current.get(), **changes))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
