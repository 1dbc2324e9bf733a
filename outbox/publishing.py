"""Writing events to the outbox, in the transaction of the change they describe."""

from __future__ import annotations

import json
import os
import time
import uuid

from django.db import transaction
from django.utils import timezone

from outbox import context, streams
from outbox.errors import InvalidEvent, NotInTransaction
from outbox.layout import slot_for
from outbox.registry import Event, registry

# One statement numbers the aggregate's version and inserts the row. On PostgreSQL it
# also queues a NOTIFY, which is delivered when (and only if) the transaction commits:
# the relays waiting on the channel wake at once, and a commit never has to talk to
# anything else afterwards. Several events of one transaction on one slot make one
# notification.
INSERT_EVENT = {
    "postgresql": (
        "WITH ins AS (INSERT INTO outbox_outboxevent (event_id, event_type, version, "
        "aggregate_type, aggregate_id, aggregate_version, slot, payload, headers, occurred_at, "
        "attempts, last_error) SELECT %s, %s, %s, %s, %s, COALESCE(MAX(aggregate_version), 0) + 1, "
        "%s, CAST(%s AS jsonb), CAST(%s AS jsonb), %s, 0, '' FROM outbox_outboxevent "
        "WHERE aggregate_type = %s AND aggregate_id = %s RETURNING id) "
        "SELECT id, pg_notify(%s, %s) FROM ins"
    ),
    "sqlite": (
        "INSERT INTO outbox_outboxevent (event_id, event_type, version, "
        "aggregate_type, aggregate_id, aggregate_version, slot, payload, headers, occurred_at, "
        "attempts, last_error) SELECT %s, %s, %s, %s, %s, COALESCE(MAX(aggregate_version), 0) + 1, "
        "%s, %s, %s, %s, 0, '' FROM outbox_outboxevent "
        "WHERE aggregate_type = %s AND aggregate_id = %s RETURNING id"
    ),
}


def new_event_id() -> uuid.UUID:
    """A UUID (version 7 layout) whose leading 48 bits are the time in milliseconds.

    Ids made one after the other sort together, so the inbox's unique index on
    (group, event_id) grows at its right edge instead of at random pages.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def publish(event: Event, *, using: str = "default") -> int:
    """Append ``event`` to the outbox within the caller's open transaction.

    The event becomes visible to the relay only when that transaction commits,
    and disappears with it on rollback. Returns the row's global sequence number.

    Raises ``NotInTransaction`` outside ``transaction.atomic()`` and
    ``InvalidEvent`` when the event is not a registered type or its payload,
    once turned into JSON, no longer matches its schema. Nothing is written then.
    """
    connection = transaction.get_connection(using)
    if not connection.in_atomic_block:
        raise NotInTransaction(
            f"publish({event.name}) must run inside transaction.atomic(), "
            "so the event commits or rolls back with the change it describes"
        )
    cls = type(event)
    if registry.events.get((cls.name, cls.version)) is not cls:
        raise InvalidEvent(f"{cls.__qualname__} is not a registered event type")
    try:
        payload = json.dumps(event.payload())
        # What consumers will see is the JSON form: check that it still fits, strictly
        # (lax validation would let "5" pass for an int and store the string).
        cls.model_validate_json(payload)
    except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
        raise InvalidEvent(f"{cls.name} v{cls.version}: {exc}") from exc

    aggregate_id = event.aggregate_id()
    slot = slot_for(cls.aggregate_type, aggregate_id)
    # Two writers of one aggregate collide on its unique version: callers lock the
    # aggregate's row first, so they queue instead.
    event_id = new_event_id()
    params = [
        event_id if connection.features.has_native_uuid_field else event_id.hex,
        cls.name,
        cls.version,
        cls.aggregate_type,
        aggregate_id,
        slot,
        payload,
        json.dumps(context.current().headers()),
        connection.ops.adapt_datetimefield_value(timezone.now()),
        cls.aggregate_type,
        aggregate_id,
    ]
    if connection.vendor == "postgresql":
        params += [streams.notify_channel(), str(slot)]
    with connection.cursor() as cursor:
        cursor.execute(INSERT_EVENT[connection.vendor], params)
        return cursor.fetchone()[0]
