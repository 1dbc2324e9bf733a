"""The failure path of consuming, in one place.

``triage`` decides, before any handler runs, what a stream entry is for a group:
not its business (acknowledged and skipped), to be applied, parked behind an
earlier dead letter of its aggregate, or a dead letter at once (malformed,
unknown type, newer than the group handles, payload that breaks its schema:
retrying cannot mend any of these). Only a handler's own failure is retried:
``record_failure`` counts the attempts in ``DeliveryFailure`` (so a worker
restart does not reset them) with exponential backoff, and makes the event a
dead letter when they run out. ``dead_letter`` writes every dead letter.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from outbox.conf import conf
from outbox.errors import NoUpcaster
from outbox.message import MalformedEntry, Message
from outbox.models import DeadLetter, DeliveryFailure
from outbox.registry import ConsumerGroup, Handler, registry

logger = logging.getLogger(__name__)

Aggregate = tuple[str, str]


@dataclass(frozen=True)
class Skip:
    """A known event type the group does not subscribe to: acknowledge it."""


@dataclass(frozen=True)
class Apply:
    message: Message
    handler: Handler


@dataclass(frozen=True)
class Parked:
    """A later event of an aggregate that has an open dead letter in this group."""

    message: Message
    blocker: int


@dataclass(frozen=True)
class Reject:
    """An entry no retry can mend: it becomes a dead letter at once."""

    kind: str  # one of DeadLetter.Kind: malformed, unknown_type, too_new or schema
    reason: str
    message: Message | None = None


SKIP = Skip()
Verdict = Skip | Apply | Parked | Reject


def skipped(group: ConsumerGroup, fields: Mapping[str, str] | None) -> bool:
    """Whether the entry is of a known type ``group`` does not handle (looked at its type only)."""
    event_type = fields.get("type") if fields else None
    return (
        isinstance(event_type, str)
        and event_type not in group.handlers
        and registry.known_type(event_type)
    )


def triage(
    group: ConsumerGroup, fields: Mapping[str, str] | None, parked: Mapping[Aggregate, int]
) -> Verdict:
    """What ``group`` must do with a stream entry, decided without running any handler."""
    if skipped(group, fields):
        return SKIP  # not decoded at all: most entries of a stream are other groups' business
    try:
        message = Message.decode(fields)
    except MalformedEntry as exc:
        return Reject(DeadLetter.Kind.MALFORMED, f"malformed stream entry: {exc}")
    handler = group.handlers.get(message.type)
    if handler is None:
        return Reject(DeadLetter.Kind.UNKNOWN_TYPE, f"unknown event type {message.type!r}", message)
    if message.version > handler.max_version:
        return Reject(
            DeadLetter.Kind.TOO_NEW,
            f"{message.type} v{message.version} is newer than this group handles "
            f"(v{handler.min_version}..v{handler.max_version})",
            message,
        )
    blocker = parked.get((message.aggregate_type, message.aggregate_id))
    if blocker is not None:
        return Parked(message, blocker)
    problem = schema_problem(message, fields["payload"])  # type: ignore[index]
    if problem is not None:
        return Reject(
            DeadLetter.Kind.SCHEMA,
            f"payload breaks the schema of {message.type} v{message.version}: {problem}",
            message,
        )
    return Apply(message, handler)


def schema_problem(message: Message, raw_payload: str) -> str | None:
    """Why the payload does not fit its type's registered schema, or None if it does.

    Versions kept only as an upcaster's input have no schema to check here.
    """
    cls = registry.events.get((message.type, message.version))
    if cls is None:
        return None
    try:
        cls.model_validate_json(raw_payload)
    except ValueError as exc:  # pydantic's ValidationError
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "payload"
            return f"{where}: {first.get('msg')}"
        return str(exc)
    return None


@dataclass(frozen=True)
class Place:
    """Where an entry was read: what a dead letter and a delivery failure record."""

    group: str
    partition: int
    stream: str


def dead_letter(
    place: Place,
    entry_id: str,
    fields: Mapping[str, str] | None,
    message: Message | None,
    kind: str,
    reason: str,
    *,
    error: str = "",
    tb: str = "",
    attempts: int = 0,
) -> DeadLetter | None:
    """Record a dead letter; None when the group has an open one for the event already."""
    try:
        with transaction.atomic():
            letter = DeadLetter.objects.create(
                group=place.group,
                partition=place.partition,
                event_id=message.event_id if message else None,
                event_type=message.type if message else str((fields or {}).get("type", ""))[:200],
                aggregate_type=message.aggregate_type if message else "",
                aggregate_id=message.aggregate_id if message else "",
                sequence=message.sequence if message else None,
                fields={"stream": place.stream, "entry_id": entry_id, "data": dict(fields or {})},
                kind=kind,
                reason=reason[:500],
                error=error,
                traceback=tb,
                attempts=attempts,
            )
    except IntegrityError:
        return None  # a duplicate delivery of an event that is a dead letter already
    logger.error("dead letter #%s in %s: %s", letter.pk, place.group, reason)
    return letter


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: exponential, capped."""
    return min(conf.RETRY_BACKOFF_S * (2 ** (attempts - 1)), conf.RETRY_BACKOFF_MAX_S)


# A deadlock, a serialization failure or a lock wait over lock_timeout says nothing
# about the event: this transaction gave way to another, and running it again is
# what PostgreSQL's documentation asks.
TRANSIENT_SQLSTATES = {"40P01", "40001", "55P03"}
STALE_PLAN = "cached plan must not change result type"


def stale_plan(exc: BaseException) -> bool:
    """Whether the error is a prepared statement outdated by a schema change.

    Only a new database session mends it (prepared statements live in the
    session): the readers then drop theirs instead of counting a failure.
    """
    for error in (exc, exc.__cause__):
        if getattr(error, "sqlstate", None) == "0A000" and STALE_PLAN in str(error):
            return True
    return False


def transient(exc: BaseException) -> bool:
    """Whether a handler's error is one that retrying at once is expected to mend."""
    return (
        getattr(exc.__cause__, "sqlstate", None) in TRANSIENT_SQLSTATES
        or getattr(exc, "sqlstate", None) in TRANSIENT_SQLSTATES
    )


def record_failure(
    place: Place,
    entry_id: str,
    fields: Mapping[str, str] | None,
    message: Message,
    exc: BaseException,
    previous: DeliveryFailure | None,
) -> tuple[datetime | None, DeadLetter | None]:
    """Count a handler's failure; returns (when to try again, or the dead letter it became).

    Call it from the ``except`` block, so the traceback is the handler's. A
    transient database error is tried again at once and not counted.
    """
    error = f"{type(exc).__name__}: {exc}"
    if transient(exc):
        logger.info("%s: %s gave way (%s); trying again", place.group, message.type, error)
        return timezone.now(), None
    attempts = (previous.attempts if previous else 0) + 1
    failures = DeliveryFailure.objects.filter(
        group=place.group, stream=place.stream, entry_id=entry_id
    )
    if attempts >= conf.MAX_ATTEMPTS or isinstance(exc, NoUpcaster):
        # Retrying cannot help a missing upcaster: dead-letter it at once.
        letter = dead_letter(
            place,
            entry_id,
            fields,
            message,
            DeadLetter.Kind.HANDLER,
            f"handler failed after {attempts} attempt(s): {error}",
            error=error,
            tb=traceback.format_exc(),
            attempts=attempts,
        )
        failures.delete()
        return None, letter
    retry_at = timezone.now() + timedelta(seconds=backoff(attempts))
    DeliveryFailure.objects.update_or_create(
        group=place.group,
        stream=place.stream,
        entry_id=entry_id,
        defaults={"attempts": attempts, "next_attempt_at": retry_at, "last_error": error},
    )
    logger.warning(
        "%s: %s failed (attempt %s), retry at %s: %s",
        place.group,
        message.type,
        attempts,
        retry_at.isoformat(),
        error,
    )
    return retry_at, None


def failures_of(place: Place, entry_ids: list[str]) -> dict[str, DeliveryFailure]:
    """The recorded failures of entries re-read from the pending list, by entry id."""
    return {
        failure.entry_id: failure
        for failure in DeliveryFailure.objects.filter(
            group=place.group, stream=place.stream, entry_id__in=entry_ids
        )
    }


def parked_aggregates(group: str) -> dict[Aggregate, int]:
    """The group's aggregates with an open dead letter (the earliest's id): later events wait.

    All of the group's, not only one partition's: after ``outbox_repartition`` an
    aggregate may travel on another partition than the one its dead letter came from.
    """
    parked: dict[Aggregate, int] = {}
    for pk, a_type, a_id in (
        DeadLetter.objects.filter(group=group, status=DeadLetter.Status.DEAD)
        .exclude(aggregate_id="")
        .order_by("id")
        .values_list("pk", "aggregate_type", "aggregate_id")
    ):
        parked.setdefault((a_type, a_id), pk)
    return parked
