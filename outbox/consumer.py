"""The consumer runtime: applies a group's handlers to a partition's stream entries.

For each (group, partition) one process at a time holds the lease and reads as
the consumer ``streams.CONSUMER``. Entries it read but did not acknowledge (its
predecessor died, or a handler is being retried) stay in that consumer's
pending list, and the next holder reads them first, in stream order: that is how
a dead worker's messages are claimed again without reordering an aggregate.

The entries of one read are applied in one transaction, with one inbox row
``(group, event_id)`` per event under a unique constraint: a second delivery
finds the row and skips the handler. Entries are acknowledged (XACK) only after
that transaction commits. What is not a handler's business (malformed entries,
unknown types, schema-invalid payloads...) is decided first, by
``failures.triage``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import redis
from django.db import connection, transaction
from django.utils import timezone

from outbox import context, lease, logs, metrics, streams
from outbox.conf import conf
from outbox.failures import (
    Apply,
    Parked,
    Place,
    Reject,
    dead_letter,
    failures_of,
    parked_aggregates,
    record_failure,
    skipped,
    stale_plan,
    transient,
    triage,
)
from outbox.message import Message
from outbox.models import DeadLetter, InboxEntry
from outbox.registry import Handler, registry
from outbox.transactions import joining

INSERT_INBOX = (
    'INSERT INTO outbox_inboxentry ("group", event_id, event_type, processed_at) '
    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id"
)
# A whole batch's inbox rows in one statement; returns the events that were new.
INSERT_INBOX_MANY = (
    'INSERT INTO outbox_inboxentry ("group", event_id, event_type, processed_at) '
    "SELECT %s, e.id, e.type, %s FROM unnest(%s::uuid[], %s::text[]) AS e(id, type) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)

_EVENT_ID_FIELD = InboxEntry._meta.get_field("event_id")

Entry = tuple[str, Mapping[str, str] | None]


def lease_name(group: str) -> str:
    return f"outbox.consume.{group}"


def _run_handler(group: str, handler: Handler, messages: Sequence[Message]) -> None:
    """One call of ``handler``: ``messages`` (upcast) if it takes many, else the one.

    What it publishes is caused by the (last) message; its log lines name the event.
    """
    with context.handling(group, messages[-1]):
        handler.func(list(messages) if handler.many else messages[0])


def _runs(plan: Sequence[Apply]) -> Iterator[list[Apply]]:
    """The plan in handler calls: a ``many`` handler's neighbouring events make one."""
    run: list[Apply] = []
    for verdict in plan:
        if run and not (verdict.handler.many and verdict.handler.func is run[0].handler.func):
            yield run
            run = []
        run.append(verdict)
    if run:
        yield run


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
        _run_handler(group, handler, [message])
    return True


def _inbox_insert_many(group: str, messages: Sequence[Message]) -> set[UUID]:
    """Write the inbox rows of a batch (in the caller's transaction); returns the new events."""
    if not messages:
        return set()
    now = timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                INSERT_INBOX_MANY,
                [group, now, [str(m.event_id) for m in messages], [m.type for m in messages]],
            )
            return {UUID(str(row[0])) for row in cursor.fetchall()}
        new = set()
        for message in messages:
            event_id = _EVENT_ID_FIELD.get_db_prep_value(message.event_id, connection)
            cursor.execute(INSERT_INBOX, [group, event_id, message.type, now])
            if cursor.fetchone() is not None:
                new.add(message.event_id)
        return new


def already_applied(group: str, event_id: UUID) -> bool:
    return InboxEntry.objects.filter(group=group, event_id=event_id).exists()


class _HandlerFailed(Exception):
    """A handler failed on the fast path: the batch is rolled back and redone carefully."""


@dataclass
class BatchResult:
    acks: list[str] = field(default_factory=list)  # entry ids to acknowledge after commit
    stopped: bool = False  # a failed entry (and those after it) stays pending until retry_at
    applied: list[Message] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)  # (event type, why)
    retried: list[str] = field(default_factory=list)  # event types

    @property
    def handled(self) -> int:
        return len(self.applied)

    @property
    def dead_lettered(self) -> int:
        return len(self.dead)

    def observe(self, group: str) -> None:
        """Count what the committed batch did (``outbox.metrics``)."""
        now = time.time()
        for message in self.applied:
            metrics.HANDLED.labels(group, message.type).inc()
            metrics.COMMIT_TO_HANDLED.labels(group).observe(
                max(now - message.occurred_at.timestamp(), 0.0)
            )
        for event_type, why in self.dead:
            metrics.DEAD_LETTERED.labels(group, event_type, why).inc()
        for event_type in self.retried:
            metrics.RETRIED.labels(group, event_type).inc()
        logs.log_applied(group, self.applied)


class PartitionConsumer:
    """A group's work on one partition, for as long as the caller holds its lease."""

    def __init__(self, group: str, partition: int) -> None:
        if group not in registry.groups:
            raise LookupError(f"unknown consumer group {group!r}")
        self.group = registry.groups[group]
        self.place = Place(group, partition, streams.stream_name(partition))
        self.parked = parked_aggregates(group)
        self.retry_at: datetime | None = None  # the pending list waits for a failed entry

    def handle(self, entries: Sequence[Entry], *, fresh: bool) -> BatchResult:
        """Apply entries read together, in one transaction; see ``BatchResult``.

        Fresh entries (read with ``>``) first go the fast way: one multi-row inbox
        insert and no savepoints (``outbox.atomic`` joins the batch). If a handler
        fails there, or catches a failure it could not undo, the batch rolls back
        and is redone the careful way: each event in a savepoint, so the failure
        undoes only its own work and is counted towards its retries. Entries
        re-read from the pending list always go the careful way. A group with
        ``transaction_per_event`` commits each event on its own.
        """
        if fresh and self._only_skipped(entries):
            # Only other groups' business (the common case at low rates): no transaction.
            return BatchResult(acks=[entry_id for entry_id, _ in entries])
        result = None
        if fresh and not self.group.transaction_per_event:
            results = handle_fresh([(self, entries)])
            result = results[0] if results else None
        if result is None:
            result = self._careful(entries, fresh=fresh)
            result.observe(self.group.name)
        return result

    def _only_skipped(self, entries: Sequence[Entry]) -> bool:
        return all(skipped(self.group, fields) for _, fields in entries)

    def _dead(
        self,
        result: BatchResult,
        entry_id: str,
        fields: Mapping[str, str] | None,
        why: str,
        reason: str,
        message: Message | None,
    ) -> None:
        letter = dead_letter(self.place, entry_id, fields, message, why, reason)
        if letter is None:
            return
        event_type = message.type if message else str((fields or {}).get("type", ""))[:200]
        result.dead.append((event_type, why))
        if message is not None:
            self.parked.setdefault((message.aggregate_type, message.aggregate_id), letter.pk)

    def _triaged(
        self, entry_id: str, fields: Mapping[str, str] | None, result: BatchResult
    ) -> Apply | None:
        """Settle what is not a handler's business; returns what is left to apply."""
        verdict = triage(self.group, fields, self.parked)
        if isinstance(verdict, Apply):
            return verdict
        if isinstance(verdict, Reject):
            self._dead(result, entry_id, fields, verdict.kind, verdict.reason, verdict.message)
        elif isinstance(verdict, Parked) and not already_applied(
            self.group.name, verdict.message.event_id
        ):
            # Keep the aggregate's order: later events wait behind its dead letter.
            reason = f"parked behind dead letter #{verdict.blocker}"
            self._dead(result, entry_id, fields, DeadLetter.Kind.PARKED, reason, verdict.message)
        return None

    def _plan(self, entries: Sequence[Entry]) -> tuple[BatchResult, list[Apply]]:
        result = BatchResult(acks=[entry_id for entry_id, _ in entries])
        plan = [
            verdict
            for entry_id, fields in entries
            if (verdict := self._triaged(entry_id, fields, result)) is not None
        ]
        return result, plan

    def _run(self, plan: Sequence[Apply], new: set[UUID], result: BatchResult) -> None:
        """The fast way's handler runs, in the caller's transaction; see ``handle_fresh``."""
        todo = []
        for verdict in plan:
            if verdict.message.event_id in new:  # else applied before (or twice in this batch)
                new.discard(verdict.message.event_id)
                todo.append(verdict)
        with joining():  # the handlers' ``outbox.atomic()`` blocks make no savepoints
            for run in _runs(todo):
                handler = run[0].handler
                try:
                    messages = [verdict.handler.upcast(verdict.message) for verdict in run]
                    _run_handler(self.group.name, handler, messages)
                except Exception as exc:
                    raise _HandlerFailed from exc
                if connection.needs_rollback:
                    # The handler caught a failure from a block without a savepoint:
                    # only the careful way can undo just that block.
                    raise _HandlerFailed
                result.applied += [verdict.message for verdict in run]

    def _careful(self, entries: Sequence[Entry], *, fresh: bool) -> BatchResult:
        result = BatchResult()
        failures = {} if fresh else failures_of(self.place, [entry_id for entry_id, _ in entries])
        now = timezone.now()
        batch = nullcontext() if self.group.transaction_per_event else transaction.atomic()
        with batch:
            for entry_id, fields in entries:
                verdict = self._triaged(entry_id, fields, result)
                if verdict is None:
                    result.acks.append(entry_id)
                    continue
                failure = failures.get(entry_id)
                if failure is not None and failure.next_attempt_at > now:
                    self.retry_at = failure.next_attempt_at
                    result.stopped = True
                    return result
                try:
                    applied = apply(self.group.name, verdict.message, verdict.handler)
                except Exception as exc:  # any handler error is recorded, never a crash loop
                    if stale_plan(exc):
                        raise  # the session's fault, not the event's: the reader renews it
                    retry_at, letter = record_failure(
                        self.place, entry_id, fields, verdict.message, exc, failure
                    )
                    if retry_at is not None:
                        if not transient(exc):
                            result.retried.append(verdict.message.type)
                        self.retry_at = retry_at
                        result.stopped = True
                        return result
                    if letter is not None:
                        m = verdict.message
                        self.parked.setdefault((m.aggregate_type, m.aggregate_id), letter.pk)
                        result.dead.append((m.type, DeadLetter.Kind.HANDLER))
                    result.acks.append(entry_id)
                    continue
                if failure is not None:
                    failure.delete()
                if applied:
                    result.applied.append(verdict.message)
                result.acks.append(entry_id)
        self.retry_at = None
        return result


def handle_fresh(
    batches: Sequence[tuple[PartitionConsumer, Sequence[Entry]]],
) -> list[BatchResult] | None:
    """Fresh entries of one batching group's partitions, read together: the fast way.

    One transaction and one multi-row inbox insert for all of them: the entries of
    each partition are applied in stream order, partition after partition (an
    aggregate lives in one partition, so its order is kept). Returns each batch's
    result, counted (``BatchResult.observe``) after the commit, or None when a
    handler failed: all were rolled back, and the caller redoes each partition on
    its own (``PartitionConsumer.handle``).
    """
    parked = [dict(consumer.parked) for consumer, _ in batches]
    group = batches[0][0].group.name
    try:
        with transaction.atomic():
            plans = [consumer._plan(entries) for consumer, entries in batches]
            new = _inbox_insert_many(
                group, [verdict.message for _, plan in plans for verdict in plan]
            )
            for (consumer, _), (result, plan) in zip(batches, plans, strict=True):
                consumer._run(plan, new, result)
    except _HandlerFailed:
        for (consumer, _), before in zip(batches, parked, strict=True):
            consumer.parked = before
        return None
    results = [result for result, _ in plans]
    for result in results:
        result.observe(group)
    return results


def handle_read(batches: Sequence[tuple[PartitionConsumer, Sequence[Entry]]]) -> list[BatchResult]:
    """The fresh entries one read brought a group, of each of its partitions; a result each.

    A group that batches applies all the partitions that hold work for it in one
    transaction (``handle_fresh``); if a handler fails there, or the group commits
    each event, each partition goes on its own (``PartitionConsumer.handle``).
    """
    work = [
        i for i, (consumer, entries) in enumerate(batches) if not consumer._only_skipped(entries)
    ]
    done: dict[int, BatchResult] = {}
    if len(work) > 1 and not batches[0][0].group.transaction_per_event:
        together = handle_fresh([batches[i] for i in work])
        if together is not None:
            done = dict(zip(work, together, strict=True))
    return [
        done[i] if i in done else consumer.handle(entries, fresh=True)
        for i, (consumer, entries) in enumerate(batches)
    ]


def read(
    client: redis.Redis,
    group: str,
    starts: Mapping[int, str],
    *,
    count: int,
    block_ms: int | None = None,
    acks: Mapping[int, Sequence[str]] | None = None,
) -> list[tuple[int, list[Entry]]]:
    """One XREADGROUP over several partitions: ``{partition: "0" or ">"}``.

    ``acks`` (entry ids per partition, whose batches have committed) are
    acknowledged in the same round trip, just before the read. Returns
    ``[(partition, entries)]``. When a stream or the group is missing (Redis
    lost its data) it recreates them from the start and returns nothing.
    """
    streams_: dict[Any, Any] = {streams.stream_name(p): start for p, start in starts.items()}
    try:
        if acks:
            pipe = client.pipeline(transaction=False)
            for partition, ids in acks.items():
                pipe.xack(streams.stream_name(partition), group, *ids)
            pipe.xreadgroup(group, streams.CONSUMER, streams_, count=count, block=block_ms)
            reply = pipe.execute()[-1]
        else:
            reply = client.xreadgroup(
                group, streams.CONSUMER, streams_, count=count, block=block_ms
            )
    except redis.ResponseError as exc:
        if "NOGROUP" in str(exc):
            for partition in starts:
                streams.ensure_group(client, group, partition)
            return []
        if "UNBLOCKED" in str(exc):  # a stream deleted while we waited (outbox_repartition)
            return []
        raise
    return [(streams.partition_of_stream(name), entries) for name, entries in reply or []]


@dataclass
class ConsumeResult:
    handled: int = 0
    acked: int = 0
    dead_lettered: int = 0
    busy: bool = False  # another process holds the lease
    retry_at: datetime | None = None  # a failed entry blocks the partition until then
    more: bool = False  # stopped by the time limit with entries left


def consume(
    group: str,
    partition: int,
    *,
    client: redis.Redis | None = None,
    max_seconds: float = 5.0,
    block_ms: int | None = None,
) -> ConsumeResult:
    """Take the lease if free, apply ``group``'s handlers to the partition until drained, release.

    For one-off runs (the beat's poll, ``outbox.testing.drain``); the readers
    inside the worker hold their leases for as long as they live.
    """
    if group not in registry.groups:
        raise LookupError(f"unknown consumer group {group!r}")
    client = client or streams.get_redis()
    result = ConsumeResult()
    deadline = time.monotonic() + max_seconds
    count = conf.CONSUMER_BATCH_SIZE
    with lease.held(lease_name(group), partition) as got:
        if not got:
            result.busy = True
            return result
        worker = PartitionConsumer(group, partition)
        start = "0"  # first what this consumer left pending, then new entries
        while time.monotonic() < deadline:
            replies = read(
                client,
                group,
                {partition: start},
                count=count,
                block_ms=None if start == "0" else block_ms,
            )
            entries = replies[0][1] if replies else []
            if not entries:
                if start == "0":
                    start = ">"
                    continue
                break
            batch = worker.handle(entries, fresh=start == ">")
            if batch.acks:
                client.xack(worker.place.stream, group, *batch.acks)
            result.acked += len(batch.acks)
            result.handled += batch.handled
            result.dead_lettered += batch.dead_lettered
            if batch.stopped:
                if worker.retry_at is not None and worker.retry_at <= timezone.now():
                    start = "0"
                    continue
                result.retry_at = worker.retry_at
                break
            if start == "0":
                continue  # until the pending list is empty
        else:
            result.more = True
    return result
