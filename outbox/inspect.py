"""What the operator's pages show: the event log's recent activity, and one event's lifecycle.

Everything is read from what the outbox keeps anyway (no sampling table): the
outbox rows (``occurred_at``, ``published_at``), the inbox rows
(``processed_at``), delivery failures and dead letters, and the streams in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.utils import timezone

from outbox import layout as layouts
from outbox import streams
from outbox.models import DeadLetter, DeliveryFailure, InboxEntry, OutboxEvent
from outbox.registry import registry

WINDOW_MINUTES = 60
# An event committed this long before the window still counts in the lag at its start.
LOOKBACK = timedelta(hours=1)
TOP_TYPES = 8  # event types drawn on their own; the rest are "other"

# --- dead letters by reason ------------------------------------------------------------


def dead_letters_by_reason() -> dict[str, dict[str, int]]:
    """Open dead letters: ``{kind (in words): {group: count}}``, the largest kinds first."""
    counts: dict[str, dict[str, int]] = {}
    rows = (
        DeadLetter.objects.filter(status=DeadLetter.Status.DEAD)
        .values_list("kind", "group")
        .annotate(n=Count("id"))
    )
    for kind, group, n in rows:
        counts.setdefault(DeadLetter.Kind(kind).label, {})[group] = n
    return dict(sorted(counts.items(), key=lambda item: (-sum(item[1].values()), item[0])))


# --- activity over the last hour ---------------------------------------------------------


@dataclass
class Activity:
    """Per minute over the window: events committed by type, and each group's lag."""

    start: datetime  # the first minute of the window
    minutes: int
    events: dict[str, list[int]]  # event type (or "other") -> events committed per minute
    lag: dict[str, list[int]]  # group -> events not yet applied at the end of each minute
    total_events: int = 0

    def minute(self, index: int) -> datetime:
        return self.start + timedelta(minutes=index)


def activity(*, now: datetime | None = None, minutes: int = WINDOW_MINUTES) -> Activity:
    """Events per minute by type, and each group's lag at the end of each minute.

    The lag of a group at time t is the number of events of the types it
    subscribes to committed by t that it had neither applied (inbox
    ``processed_at``) nor dead-lettered by t. Events committed more than
    ``LOOKBACK`` before the window are left out of it.
    """
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    since = start - LOOKBACK
    recent = OutboxEvent.objects.filter(occurred_at__gte=since)
    by_type = (
        recent.annotate(m=TruncMinute("occurred_at"))
        .values_list("event_type", "m")
        .annotate(n=Count("id"))
    )
    # Index 0 holds everything before the window (the lag's starting point).
    committed_raw: dict[str, list[int]] = {}
    events: dict[str, list[int]] = {}
    for event_type, minute, n in by_type:
        index = int((minute - start).total_seconds() // 60)
        committed_raw.setdefault(event_type, [0] * (minutes + 1))[max(index + 1, 0)] += n
        if index >= 0:
            events.setdefault(event_type, [0] * minutes)[min(index, minutes - 1)] += n
    total = sum(sum(v) for v in events.values())
    ranked = sorted(events, key=lambda t: (-sum(events[t]), t))
    shown = {t: events[t] for t in ranked[:TOP_TYPES]}
    rest = ranked[TOP_TYPES:]
    if rest:
        shown["other"] = [sum(events[t][i] for t in rest) for i in range(minutes)]

    recent_ids = recent.values("event_id")
    applied = _per_minute_shifted(
        InboxEntry.objects.filter(event_id__in=recent_ids)
        .annotate(m=TruncMinute("processed_at"))
        .values_list("group", "m")
        .annotate(n=Count("id")),
        start,
        minutes,
    )
    dead = _per_minute_shifted(
        DeadLetter.objects.filter(
            event_id__in=recent_ids,
            status__in=[DeadLetter.Status.DEAD, DeadLetter.Status.DISCARDED],
        )
        .annotate(m=TruncMinute("created_at"))
        .values_list("group", "m")
        .annotate(n=Count("event_id", distinct=True)),
        start,
        minutes,
    )
    lag: dict[str, list[int]] = {}
    for name in sorted(registry.groups):
        types = registry.groups[name].handlers.keys()
        committed = applied_total = dead_total = 0
        points = []
        for index in range(minutes + 1):
            committed += sum(committed_raw[t][index] for t in types if t in committed_raw)
            applied_total += applied.get(name, [0] * (minutes + 1))[index]
            dead_total += dead.get(name, [0] * (minutes + 1))[index]
            if index:
                points.append(max(committed - applied_total - dead_total, 0))
        lag[name] = points
    return Activity(start=start, minutes=minutes, events=shown, lag=lag, total_events=total)


def _per_minute_shifted(rows: Any, start: datetime, minutes: int) -> dict[str, list[int]]:
    """``{key: counts}`` from rows of (key, minute, count): slot 0 holds what came before
    the window, slot i + 1 its minute i."""
    series: dict[str, list[int]] = {}
    for key, minute, n in rows:
        index = int((minute - start).total_seconds() // 60)
        series.setdefault(key, [0] * (minutes + 1))[min(max(index + 1, 0), minutes)] += n
    return series


# --- one event's lifecycle -----------------------------------------------------------------


@dataclass
class GroupState:
    """What one subscribed group did with the event."""

    group: str
    state: str  # applied, pending, failing, dead, discarded, resolved
    detail: str = ""
    at: datetime | None = None  # when it was applied (or dead-lettered)
    after_s: float | None = None  # how long after the event's commit
    dead_letter_id: int | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None


@dataclass
class StreamEntry:
    stream: str
    entry_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    note: str = ""  # why there is no entry to show


@dataclass
class Lifecycle:
    event: OutboxEvent
    partition: int
    entry: StreamEntry
    groups: list[GroupState]
    published_after_s: float | None = None


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else round((later - earlier).total_seconds(), 3)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def find_entry(
    client: redis.Redis, event: OutboxEvent, stream: str, known: list[str]
) -> StreamEntry:
    """The stream entry the event became: an entry id some record names, else searched by time.

    Redis numbers entries by its clock in milliseconds; the relay marks the row
    published just after its XADD, so the entry lies shortly before ``published_at``.
    """
    found = StreamEntry(stream=stream)
    if event.published_at is None:
        found.note = "not relayed yet"
        return found
    candidates = [(entry_id, entry_id) for entry_id in known]
    candidates.append((f"{_ms(event.published_at) - 10_000}", f"{_ms(event.published_at) + 2_000}"))
    wanted = str(event.event_id)
    try:
        for low, high in candidates:
            entries: Any = client.xrange(stream, low, high, count=5_000)
            for entry_id, fields in entries:
                if fields.get("id") == wanted:
                    found.entry_id, found.fields = entry_id, dict(fields)
                    return found
    except redis.RedisError as exc:
        found.note = f"Redis did not answer: {exc}"
        return found
    found.note = (
        "no longer in the stream (trimmed once every group acknowledged it, or Redis lost it)"
    )
    return found


def lifecycle(event: OutboxEvent, *, client: redis.Redis | None = None) -> Lifecycle:
    """The event's way through the system: its row, its stream entry, each subscribed group."""
    client = client or streams.get_redis()
    partition = layouts.current().partition_of(event.slot)
    stream = streams.stream_name(partition)
    subscribed = sorted(
        name for name, group in registry.groups.items() if event.event_type in group.handlers
    )
    inbox = {
        row.group: row
        for row in InboxEntry.objects.filter(event_id=event.event_id, group__in=subscribed)
    }
    letters: dict[str, DeadLetter] = {}
    for letter in DeadLetter.objects.filter(event_id=event.event_id).order_by("id"):
        letters[letter.group] = letter  # the latest of each group
    known = sorted({str(letter.fields.get("entry_id")) for letter in letters.values()} - {"None"})
    entry = find_entry(client, event, stream, known)
    failures: dict[str, DeliveryFailure] = {}
    if entry.entry_id is not None:
        known = [entry.entry_id]
    if known:
        failures = {
            f.group: f
            for f in DeliveryFailure.objects.filter(
                stream=stream, entry_id__in=known, group__in=subscribed
            )
        }
    pending = _pending(client, stream, entry.entry_id, subscribed)
    groups = []
    for name in subscribed:
        groups.append(_group_state(name, event, inbox, letters, failures, pending))
    return Lifecycle(
        event=event,
        partition=partition,
        entry=entry,
        groups=groups,
        published_after_s=_seconds(event.published_at, event.occurred_at),
    )


def _pending(
    client: redis.Redis, stream: str, entry_id: str | None, groups: list[str]
) -> dict[str, str]:
    """For each group, whether it has read the entry (``read``, not acknowledged) or not yet."""
    if entry_id is None:
        return {}
    states: dict[str, str] = {}
    try:
        info = {g["name"]: g for g in client.xinfo_groups(stream)}
        for group in groups:
            rows: Any = client.xpending_range(stream, group, entry_id, entry_id, 1)
            if rows:
                states[group] = (
                    f"read {rows[0]['times_delivered']} time(s), not acknowledged "
                    f"(idle {rows[0]['time_since_delivered'] / 1000:.1f} s)"
                )
            elif group in info and _before(info[group].get("last-delivered-id"), entry_id):
                states[group] = "not read yet"
    except redis.RedisError:
        return {}
    return states


def _before(last: str | None, entry_id: str) -> bool:
    if not last:
        return True

    def key(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return int(ms), int(seq or 0)

    return key(last) < key(entry_id)


def _group_state(
    name: str,
    event: OutboxEvent,
    inbox: dict[str, InboxEntry],
    letters: dict[str, DeadLetter],
    failures: dict[str, DeliveryFailure],
    pending: dict[str, str],
) -> GroupState:
    row = inbox.get(name)
    letter = letters.get(name)
    if row is not None:
        state = GroupState(
            name,
            "applied",
            at=row.processed_at,
            after_s=_seconds(row.processed_at, event.occurred_at),
        )
        if letter is not None:
            state.detail = f"after dead letter #{letter.pk} was retried"
            state.dead_letter_id = letter.pk
        return state
    if letter is not None and letter.status == DeadLetter.Status.DISCARDED:
        return GroupState(
            name,
            "discarded",
            detail=f"by {letter.discarded_by}: {letter.discard_reason}",
            at=letter.discarded_at,
            dead_letter_id=letter.pk,
        )
    if letter is not None and letter.status == DeadLetter.Status.DEAD:
        return GroupState(
            name,
            "dead",
            detail=letter.reason,
            at=letter.created_at,
            after_s=_seconds(letter.created_at, event.occurred_at),
            dead_letter_id=letter.pk,
            attempts=letter.attempts,
        )
    failure = failures.get(name)
    if failure is not None:
        return GroupState(
            name,
            "failing",
            detail=failure.last_error,
            attempts=failure.attempts,
            next_attempt_at=failure.next_attempt_at,
        )
    if event.published_at is None:
        return GroupState(name, "pending", detail="waiting for the relay")
    return GroupState(name, "pending", detail=pending.get(name, "in the stream"))
