"""The consumer runtime: applies a group's handlers to a partition's stream.

For each (group, partition) one process at a time holds the lease and reads as
the consumer named after the partition. Entries it read but did not acknowledge
(its predecessor died, or a handler is being retried) stay in that consumer's
pending list, and the next holder reads them first, in stream order: that is how
a dead worker's messages are claimed again without reordering an aggregate.

Each handler runs in a savepoint together with the group's inbox row for the
event, inside one transaction per batch read; a second delivery finds the row
and skips the handler. Entries are acknowledged (XACK) only after that
transaction commits.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from outbox import context, lease, streams
from outbox.doorbell import Doorbell
from outbox.errors import NoUpcaster
from outbox.message import MalformedEntry, Message
from outbox.models import DeadLetter, DeliveryFailure, InboxEntry
from outbox.registry import Handler, registry

logger = logging.getLogger(__name__)

INSERT_INBOX = (
    'INSERT INTO outbox_inboxentry ("group", event_id, event_type, processed_at) '
    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)


_EVENT_ID_FIELD = InboxEntry._meta.get_field("event_id")


@dataclass
class ConsumeResult:
    handled: int = 0
    acked: int = 0
    dead_lettered: int = 0
    busy: bool = False  # another process holds the lease
    retry_at: datetime | None = None  # a failed entry blocks the partition until then
    more: bool = False  # stopped by the time limit with entries left


@dataclass
class _Run:
    group: str
    partition: int
    stream: str
    blocked: dict[tuple[str, str], int] = field(default_factory=dict)


def consumer_name(partition: int) -> str:
    return f"p{partition}"


def lease_name(group: str) -> str:
    return f"outbox.consume.{group}"


def backoff(attempts: int) -> float:
    """Seconds to wait before attempt ``attempts + 1``: exponential, capped."""
    base = settings.OUTBOX_RETRY_BACKOFF_S
    return min(base * (2 ** (attempts - 1)), settings.OUTBOX_RETRY_BACKOFF_MAX_S)


def apply(group: str, message: Message, handler: Handler, *, savepoint: bool = True) -> bool:
    """Apply one event for a group, effectively once; returns False if already applied.

    Runs the handler and writes the inbox row in one transaction (a savepoint when
    the caller has one open, as the consumer does per batch). Raises what the
    handler raises (nothing is then written), and ``NoUpcaster`` when no
    upcaster brings the event to the handler's version.
    """
    message = handler.upcast(message)
    with transaction.atomic(savepoint=savepoint):
        with connection.cursor() as cursor:
            event_id = _EVENT_ID_FIELD.get_db_prep_value(message.event_id, connection)
            cursor.execute(INSERT_INBOX, [group, event_id, message.type, timezone.now()])
            if cursor.fetchone() is None:
                return False
        with context.caused_by(
            causation_id=str(message.event_id),
            correlation_id=message.headers.get("correlation_id") or str(message.event_id),
            actor=f"consumer:{group}",
        ):
            handler.func(message)
    return True


def already_applied(group: str, event_id) -> bool:
    return InboxEntry.objects.filter(group=group, event_id=event_id).exists()


def _dead_letter(
    run: _Run,
    entry_id: str,
    fields: dict | None,
    message: Message | None,
    reason: str,
    *,
    error: str = "",
    tb: str = "",
    attempts: int = 0,
) -> None:
    try:
        with transaction.atomic():
            letter = DeadLetter.objects.create(
                group=run.group,
                partition=run.partition,
                event_id=message.event_id if message else None,
                event_type=message.type if message else (fields or {}).get("type", "")[:200],
                aggregate_type=message.aggregate_type if message else "",
                aggregate_id=message.aggregate_id if message else "",
                sequence=message.sequence if message else None,
                fields={"stream": run.stream, "entry_id": entry_id, "data": fields or {}},
                reason=reason[:500],
                error=error,
                traceback=tb,
                attempts=attempts,
            )
    except IntegrityError:
        # Already a dead letter for this group (a duplicate delivery): keep the first.
        return
    logger.error("dead letter #%s in %s: %s", letter.pk, run.group, reason)
    if message is not None and (message.aggregate_type, message.aggregate_id) not in run.blocked:
        run.blocked[(message.aggregate_type, message.aggregate_id)] = letter.pk


class _HandlerFailed(Exception):
    """A handler failed on the fast path: the batch is rolled back and redone carefully."""


def _process(
    run: _Run,
    entry_id: str,
    fields: dict | None,
    result: ConsumeResult,
    *,
    fresh: bool,
    fast: bool = False,
) -> bool:
    """Handle one entry. True: acknowledge it. False: leave it pending and stop.

    ``fresh`` entries were just read for the first time, so no failure is recorded
    for them yet: only entries re-read from the pending list need that lookup.
    ``fast`` applies without a savepoint and raises ``_HandlerFailed`` when the
    handler fails, for the caller to roll the whole batch back.
    """
    group = registry.groups[run.group]
    try:
        message = Message.decode(fields)
    except MalformedEntry as exc:
        _dead_letter(run, entry_id, fields, None, f"malformed stream entry: {exc}")
        result.dead_lettered += 1
        return True
    handler = group.handlers.get(message.type)
    if handler is None:
        if not registry.known_type(message.type):
            _dead_letter(run, entry_id, fields, message, f"unknown event type {message.type!r}")
            result.dead_lettered += 1
        return True
    if message.version > handler.max_version:
        _dead_letter(
            run,
            entry_id,
            fields,
            message,
            f"{message.type} v{message.version} is newer than this group handles "
            f"(v{handler.min_version}..v{handler.max_version})",
        )
        result.dead_lettered += 1
        return True
    blocker = run.blocked.get((message.aggregate_type, message.aggregate_id))
    if blocker is not None:
        if not already_applied(run.group, message.event_id):
            # Keep the aggregate's order: later events wait behind its dead letter.
            _dead_letter(run, entry_id, fields, message, f"parked behind dead letter #{blocker}")
            result.dead_lettered += 1
        return True

    failure = (
        None
        if fresh
        else DeliveryFailure.objects.filter(
            group=run.group, stream=run.stream, entry_id=entry_id
        ).first()
    )
    if failure is not None and failure.next_attempt_at > timezone.now():
        result.retry_at = failure.next_attempt_at
        return False
    try:
        applied = apply(run.group, message, handler, savepoint=not fast)
    except (
        Exception
    ) as exc:  # any handler error is recorded (or redone carefully), never a crash loop
        if fast:
            raise _HandlerFailed from exc
        attempts = (failure.attempts if failure else 0) + 1
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= settings.OUTBOX_MAX_ATTEMPTS or isinstance(exc, NoUpcaster):
            # Retrying cannot help a missing upcaster: dead-letter it at once.
            _dead_letter(
                run,
                entry_id,
                fields,
                message,
                f"handler failed after {attempts} attempt(s): {error}",
                error=error,
                tb=traceback.format_exc(),
                attempts=attempts,
            )
            DeliveryFailure.objects.filter(
                group=run.group, stream=run.stream, entry_id=entry_id
            ).delete()
            result.dead_lettered += 1
            return True
        retry_at = timezone.now() + timedelta(seconds=backoff(attempts))
        DeliveryFailure.objects.update_or_create(
            group=run.group,
            stream=run.stream,
            entry_id=entry_id,
            defaults={"attempts": attempts, "next_attempt_at": retry_at, "last_error": error},
        )
        logger.warning(
            "%s: %s failed (attempt %s), retry at %s: %s",
            run.group,
            message.type,
            attempts,
            retry_at.isoformat(),
            error,
        )
        result.retry_at = retry_at
        return False
    if failure is not None:
        failure.delete()
    if applied:
        result.handled += 1
    return True


def _apply_batch(
    run: _Run, entries: list, result: ConsumeResult, *, fresh: bool
) -> tuple[list[str], bool]:
    """Apply a batch read in one transaction; returns (entry ids to acknowledge, stopped).

    Fresh batches first go the fast way, without a savepoint per event (two round
    trips fewer each). If a handler fails there, the whole batch rolls back and is
    redone the careful way: each event in a savepoint, so the failure undoes only
    its own work and is counted towards its retries.
    """
    if fresh:
        trial = ConsumeResult()
        blocked = dict(run.blocked)
        try:
            with transaction.atomic():
                for entry_id, fields in entries:
                    _process(run, entry_id, fields, trial, fresh=True, fast=True)
        except _HandlerFailed:
            run.blocked = blocked
        else:
            result.handled += trial.handled
            result.dead_lettered += trial.dead_lettered
            return [entry_id for entry_id, _ in entries], False
    acks: list[str] = []
    with transaction.atomic():
        for entry_id, fields in entries:
            if not _process(run, entry_id, fields, result, fresh=fresh):
                return acks, True
            acks.append(entry_id)
    return acks, False


def _read(client: redis.Redis, run: _Run, start: str, count: int, block_ms: int | None):
    try:
        reply = client.xreadgroup(
            run.group,
            consumer_name(run.partition),
            {run.stream: start},
            count=count,
            block=block_ms,
        )
    except redis.ResponseError as exc:
        if "NOGROUP" not in str(exc):
            raise
        # The stream or group is gone (Redis lost its data): recreate from the start.
        streams.ensure_group(client, run.group, run.partition)
        return []
    return reply[0][1] if reply else []


def consume(
    group: str,
    partition: int,
    *,
    client: redis.Redis | None = None,
    max_seconds: float = 5.0,
    block_ms: int | None = None,
) -> ConsumeResult:
    """Apply ``group``'s handlers to the partition's entries until drained or out of time."""
    if group not in registry.groups:
        raise LookupError(f"unknown consumer group {group!r}")
    client = client or streams.get_redis()
    result = ConsumeResult()
    run = _Run(group, partition, streams.stream_name(partition))
    deadline = time.monotonic() + max_seconds
    count = settings.OUTBOX_CONSUMER_BATCH_SIZE
    with lease.held(lease_name(group), partition) as got:
        if not got:
            result.busy = True
            return result
        Doorbell.consumer(group, partition).clear(client)
        run.blocked = {
            (a_type, a_id): pk
            for pk, a_type, a_id in DeadLetter.objects.filter(
                group=group, partition=partition, status=DeadLetter.Status.DEAD
            )
            .exclude(aggregate_id="")
            .order_by("-id")
            .values_list("pk", "aggregate_type", "aggregate_id")
        }
        start = "0"  # first what this consumer left pending, then new entries
        while time.monotonic() < deadline:
            entries = _read(client, run, start, count, None if start == "0" else block_ms)
            if not entries:
                if start == "0":
                    start = ">"
                    continue
                break
            acks, stopped = _apply_batch(run, entries, result, fresh=start == ">")
            if acks:
                client.xack(run.stream, group, *acks)
                result.acked += len(acks)
            if stopped:
                if result.retry_at is not None and result.retry_at <= timezone.now():
                    result.retry_at = None
                    start = "0"
                    continue
                break
        else:
            result.more = True
    return result
