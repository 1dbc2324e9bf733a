"""Two probe groups record each effect; ``kind`` in the payload selects a behaviour.

- "ok": record the effect.
- "fail": raise while the Switch ``fail`` is on (fixable fault).
- "block": wait on the PostgreSQL advisory lock 4242 (a test holds it to park a worker),
  then hold it until the batch's transaction ends.
- "deadlock": raise what a deadlock raises, while ``DEADLOCKS["left"]`` counts down (in-process).
- "caught": after its effect, a service's block (``outbox.atomic``) writes a step -1
  effect and fails; the handler catches that, as a handler that ignores a ``Conflict`` does.

The effect is written in an ``outbox.atomic()`` block, as the shop's services write.
"""

import os

from django.db import connection

import outbox
from outbox import ConsumerGroup, Message
from outbox.tests.probe.models import Effect, Switch

alpha = ConsumerGroup("probe-alpha")
beta = ConsumerGroup("probe-beta")


class ProbeFault(Exception):
    pass


DEADLOCKS = {"left": 0}


def _deadlock() -> None:
    import psycopg
    from django.db import OperationalError

    DEADLOCKS["left"] -= 1
    try:
        raise psycopg.errors.DeadlockDetected("deadlock detected")
    except psycopg.Error as exc:
        raise OperationalError("deadlock detected") from exc


def _record(group: str, message: Message) -> None:
    kind = message.payload.get("kind", "ok")
    if kind == "fail" and Switch.objects.filter(kind="fail", on=True).exists():
        raise ProbeFault(f"probe fault for thing {message.aggregate_id}")
    if kind == "lookup" and Switch.objects.filter(kind="lookup", on=True).exists():
        raise KeyError("a key the handler expected")
    if kind == "deadlock" and DEADLOCKS["left"] > 0:
        _deadlock()
    if kind == "block":
        # A transaction's lock, not a session's: when lock_timeout cancels the wait in
        # the instant the lock is granted, PostgreSQL raises with the lock taken, and a
        # session lock would stay with the reader's session (the next try takes it
        # again, re-entrantly) and hold every other group back for good.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(4242)")
    with outbox.atomic():
        _effect(group, message)
    if kind == "caught":
        try:
            with outbox.atomic():
                _effect(group, message, step=-1)
                raise ProbeFault("a failure the handler expects")
        except ProbeFault:
            pass


def _effect(group: str, message: Message, *, step: int | None = None) -> None:
    Effect.objects.create(
        group=group,
        event_id=message.event_id,
        aggregate_id=message.aggregate_id,
        sequence=message.sequence,
        step=message.payload.get("step") if step is None else step,
        version_seen=message.version,
        payload=message.payload,
        worker=os.environ.get("PROBE_WORKER", ""),
        pid=os.getpid(),
    )


@alpha.handler("probe.ThingHappened")
def alpha_thing_happened(message: Message) -> None:
    _record("probe-alpha", message)


@beta.handler("probe.ThingHappened")
def beta_thing_happened(message: Message) -> None:
    _record("probe-beta", message)


@alpha.handler("probe.ThingRenamed", versions=(2, 2))
def alpha_thing_renamed(message: Message) -> None:
    _record("probe-alpha", message)
