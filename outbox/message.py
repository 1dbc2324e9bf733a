"""The stream entry format: what the relay writes and what consumers read back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

FIELDS = ("id", "type", "v", "agg", "agg_id", "agg_v", "seq", "at", "payload", "headers")


class MalformedEntry(ValueError):
    """A stream entry that is not an event this outbox wrote."""


@dataclass(frozen=True)
class Message:
    """An event as a consumer receives it. ``payload`` holds JSON primitives."""

    event_id: uuid.UUID
    type: str
    version: int
    aggregate_type: str
    aggregate_id: str
    aggregate_version: int
    sequence: int
    occurred_at: datetime
    payload: dict[str, Any]
    headers: dict[str, Any] = field(default_factory=dict)

    def with_payload(self, payload: dict[str, Any], version: int) -> Message:
        return replace(self, payload=payload, version=version)

    @classmethod
    def decode(cls, fields: Mapping[str, str] | None) -> Message:
        """Parse a stream entry; raises ``MalformedEntry`` with a readable reason."""
        if not fields:
            raise MalformedEntry("the stream entry is empty (deleted or trimmed)")
        missing = [name for name in FIELDS if name not in fields]
        if missing:
            raise MalformedEntry(f"the stream entry lacks the field(s) {', '.join(missing)}")
        try:
            event_id = uuid.UUID(fields["id"])
        except ValueError:
            raise MalformedEntry(f"event id {fields['id']!r} is not a UUID") from None
        numbers = {}
        for name in ("v", "agg_v", "seq"):
            try:
                numbers[name] = int(fields[name])
            except ValueError:
                raise MalformedEntry(
                    f"field {name!r} is not an integer: {fields[name]!r}"
                ) from None
        try:
            occurred_at = datetime.fromisoformat(fields["at"])
        except ValueError:
            raise MalformedEntry(f"field 'at' is not an ISO datetime: {fields['at']!r}") from None
        decoded = {}
        for name in ("payload", "headers"):
            try:
                decoded[name] = json.loads(fields[name])
            except ValueError as exc:
                raise MalformedEntry(f"field {name!r} is not JSON: {exc}") from None
            if not isinstance(decoded[name], dict):
                raise MalformedEntry(f"field {name!r} is not a JSON object")
        return cls(
            event_id=event_id,
            type=fields["type"],
            version=numbers["v"],
            aggregate_type=fields["agg"],
            aggregate_id=fields["agg_id"],
            aggregate_version=numbers["agg_v"],
            sequence=numbers["seq"],
            occurred_at=occurred_at,
            payload=decoded["payload"],
            headers=decoded["headers"],
        )


def encode_row(row: tuple) -> dict[str, str | int]:
    """A stream entry from an outbox row selected by ``relay.batch_query`` (but its slot)."""
    seq, event_id, event_type, version, agg, agg_id, agg_v, occurred_at, payload, headers = row
    return {
        "id": str(event_id),
        "type": event_type,
        "v": version,
        "agg": agg,
        "agg_id": agg_id,
        "agg_v": agg_v,
        "seq": seq,
        "at": _iso_utc(occurred_at),
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
        "headers": headers if isinstance(headers, str) else json.dumps(headers),
    }


def _iso_utc(value: datetime | str) -> str:
    if isinstance(value, str):  # SQLite returns text
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:  # stored in UTC; some drivers hand it back naive
        value = value.replace(tzinfo=UTC)
    return value.isoformat()
