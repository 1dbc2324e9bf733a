"""Reading the event log (the outbox table) in commit order, to rebuild read models."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from outbox.message import Message
from outbox.models import OutboxEvent


def to_message(row: OutboxEvent) -> Message:
    return Message(
        event_id=row.event_id,
        type=row.event_type,
        version=row.version,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id,
        aggregate_version=row.aggregate_version,
        sequence=row.pk,
        occurred_at=row.occurred_at,
        payload=row.payload,
        headers=row.headers,
    )


def read_log(
    *,
    event_types: Iterable[str] | None = None,
    payload: dict[str, object] | None = None,
    chunk: int = 1000,
) -> Iterator[Message]:
    """Every event still in the log (see the retention setting), oldest first.

    ``payload`` keeps only events whose payload has these key/values (e.g.
    ``{"order_id": 42}``), filtered in the database. Reads in chunks by sequence,
    so memory stays flat however long the log is.
    """
    qs = OutboxEvent.objects.order_by("id")
    if event_types is not None:
        qs = qs.filter(event_type__in=list(event_types))
    if payload:
        qs = qs.filter(**{f"payload__{key}": value for key, value in payload.items()})
    last = 0
    while True:
        rows = list(qs.filter(id__gt=last)[:chunk])
        if not rows:
            return
        for row in rows:
            yield to_message(row)
        last = rows[-1].pk
