"""Writing events to the outbox, in the transaction of the change they describe."""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from outbox import context
from outbox.errors import InvalidEvent, NotInTransaction
from outbox.registry import Event, registry

logger = logging.getLogger(__name__)


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
    from outbox.models import OutboxEvent

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
        payload = event.payload()
        # What consumers will see is the JSON form: check that it still fits, strictly
        # (lax validation would let "5" pass for an int and store the string).
        cls.model_validate_json(json.dumps(payload))
    except (ValueError, TypeError) as exc:  # pydantic's errors are ValueErrors
        raise InvalidEvent(f"{cls.name} v{cls.version}: {exc}") from exc

    aggregate_id = event.aggregate_id()
    last = (
        OutboxEvent.objects.using(using)
        .filter(aggregate_type=cls.aggregate_type, aggregate_id=aggregate_id)
        .order_by("-aggregate_version")
        .values_list("aggregate_version", flat=True)
        .first()
    )
    row = OutboxEvent.objects.using(using).create(
        event_type=cls.name,
        version=cls.version,
        aggregate_type=cls.aggregate_type,
        aggregate_id=aggregate_id,
        aggregate_version=(last or 0) + 1,
        partition=partition_for(cls.aggregate_type, aggregate_id),
        payload=payload,
        headers=context.current().headers(),
        occurred_at=timezone.now(),
    )
    if settings.OUTBOX_WAKE_ON_COMMIT:
        _wake_relay_on_commit(connection, using, row.partition)
    return row.pk


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
