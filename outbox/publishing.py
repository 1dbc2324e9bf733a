"""Writing events to the outbox, in the transaction of the change they describe."""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox import context
from outbox.errors import InvalidEvent, NotInTransaction
from outbox.registry import Event, registry

logger = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO outbox_outboxevent (event_id, event_type, version, aggregate_type, "
    "aggregate_id, aggregate_version, partition, payload, headers, occurred_at, attempts, "
    "last_error) SELECT %s, %s, %s, %s, %s, COALESCE(MAX(aggregate_version), 0) + 1, %s, "
)
_TAIL = (
    ", %s, 0, '' FROM outbox_outboxevent WHERE aggregate_type = %s AND aggregate_id = %s "
    "RETURNING id"
)
INSERT_EVENT = {
    "postgresql": _INSERT + "CAST(%s AS jsonb), CAST(%s AS jsonb)" + _TAIL,
    "sqlite": _INSERT + "%s, %s" + _TAIL,
}


def partition_for(aggregate_type: str, aggregate_id: str) -> int:
    """The stream partition of an aggregate: stable across processes and restarts."""
    key = f"{aggregate_type}:{aggregate_id}".encode()
    return zlib.crc32(key) % settings.OUTBOX_PARTITIONS


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
    partition = partition_for(cls.aggregate_type, aggregate_id)
    # One statement numbers the aggregate's version and inserts the row. Two
    # writers of one aggregate collide on its unique version: callers lock the
    # aggregate's row first, so they queue instead.
    event_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_EVENT[connection.vendor],
            [
                event_id if connection.features.has_native_uuid_field else event_id.hex,
                cls.name,
                cls.version,
                cls.aggregate_type,
                aggregate_id,
                partition,
                payload,
                json.dumps(context.current().headers()),
                connection.ops.adapt_datetimefield_value(timezone.now()),
                cls.aggregate_type,
                aggregate_id,
            ],
        )
        sequence = cursor.fetchone()[0]
    if settings.OUTBOX_WAKE_ON_COMMIT:
        _wake_relay_on_commit(connection, using, partition)
    return sequence


@dataclass(frozen=True)
class _RelayWake:
    """Rings a partition's relay doorbell after commit, outside any transaction.

    A failure here loses nothing: the beat schedule polls the outbox anyway.
    """

    partition: int

    def __call__(self) -> None:
        from outbox import tasks

        tasks.wake_relay(self.partition)


def _wake_relay_on_commit(connection, using: str, partition: int) -> None:
    wake = _RelayWake(partition)
    if any(func == wake for _, func, _ in connection.run_on_commit):
        return  # one wake-up per partition and transaction
    transaction.on_commit(wake, using=using, robust=True)
