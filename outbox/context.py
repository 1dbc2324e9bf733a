"""Who or what is causing the events published right now, and which event is being handled.

The API sets the actor and correlation id per request; the consumer sets the
causation (the event being handled) and carries its correlation id along, so
every event records the chain that led to it. The same context is what the log
lines of a handler carry (``outbox.logs.EventContextFilter``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outbox.message import Message

# An actor is a name ("user:42", "consumer:payments"), or a function that names it when an
# event is published: a request knows its user only once the API has authenticated it.
Actor = str | Callable[[], str | None] | None


@dataclass(frozen=True)
class Cause:
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: Actor = None

    def actor_name(self) -> str | None:
        return self.actor() if callable(self.actor) else self.actor

    def headers(self) -> dict[str, str]:
        return {
            "correlation_id": self.correlation_id or str(uuid.uuid4()),
            "causation_id": self.causation_id or "",
            "actor": self.actor_name() or "system",
        }


@dataclass(frozen=True)
class Handling:
    """The event a consumer group's handler is applying right now."""

    group: str
    message: Message


_current: ContextVar[Cause] = ContextVar("outbox_cause", default=Cause())  # noqa: B039 - Cause is frozen
_handling: ContextVar[Handling | None] = ContextVar("outbox_handling", default=None)


def current() -> Cause:
    return _current.get()


def handled() -> Handling | None:
    """The event being handled in this context, if any."""
    return _handling.get()


@contextmanager
def caused_by(**changes: Actor) -> Iterator[Cause]:
    """Within the block, published events carry these header values."""
    token = _current.set(replace(_current.get(), **changes))  # type: ignore[arg-type]
    try:
        yield _current.get()
    finally:
        _current.reset(token)


@contextmanager
def handling(group: str, message: Message) -> Iterator[None]:
    """Within the block, ``group`` applies ``message``: what it publishes is caused by it.

    The events published carry the message's correlation id (its own id when it has
    none) and it as their causation; log lines carry the event (see ``outbox.logs``).
    """
    cause = Cause(
        correlation_id=message.headers.get("correlation_id") or str(message.event_id),
        causation_id=str(message.event_id),
        actor=f"consumer:{group}",
    )
    token = _current.set(cause)
    handling_token = _handling.set(Handling(group, message))
    try:
        yield
    finally:
        _handling.reset(handling_token)
        _current.reset(token)


def keeping_cause(func: Callable[[], object]) -> Callable[[], None]:
    """``func`` to run later (``transaction.on_commit``) in a copy of the context current now.

    A handler's on-commit callback runs after the handler's context has ended; what
    it sends (a Celery task, a thread's call) should still carry the handler's cause,
    and its log lines the event being handled.
    """
    captured = copy_context()

    @functools.wraps(func)
    def run() -> None:
        captured.run(func)

    return run


def propagated() -> dict[str, str]:
    """What a message to another process (a Celery task) carries of the current cause."""
    cause = _current.get()
    carried = {"correlation_id": cause.correlation_id, "causation_id": cause.causation_id}
    actor = cause.actor_name()
    if actor:
        carried["actor"] = actor
    return {name: value for name, value in carried.items() if value}


def adopted(carried: dict[str, str] | None) -> Cause:
    """The cause a received message (from ``propagated``) carried; empty when it carried none."""
    carried = carried or {}
    return Cause(
        correlation_id=carried.get("correlation_id") or None,
        causation_id=carried.get("causation_id") or None,
        actor=carried.get("actor") or None,
    )


def set_cause(cause: Cause) -> object:
    """Make ``cause`` current until ``reset_cause`` with the returned token (signal handlers)."""
    return _current.set(cause)


def reset_cause(token: object) -> None:
    _current.reset(token)  # type: ignore[arg-type]
