"""The auditor: proves from PostgreSQL alone what each group did with the event log.

For every registered group it counts, over the events still in the log:

- ``lost``: published events of a type the group subscribes to that it has
  neither applied (no inbox row) nor dead-lettered;
- ``duplicated``: events with more than one inbox row for the group (the unique
  constraint forbids it: a count here means the table was tampered with);
- ``unexpected``: inbox rows without their event in the log, or of a type the
  group does not subscribe to;
- ``out_of_order``: an aggregate's events applied in another order than their
  aggregate versions (inbox rows are numbered as they are written, and one
  holder at a time applies a (group, partition), so their order is the
  application order);
- ``in_flight`` (not a fault): events not yet published, or published within
  the last ``settle_s`` seconds and not yet applied.

Run it (``manage.py outbox_audit``) after an incident, once the system has
settled: any count but ``in_flight`` says what went wrong, and where.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from outbox.registry import registry

LOST = """
SELECT count(*) FROM outbox_outboxevent e
WHERE e.event_type = ANY(%(types)s) AND e.published_at IS NOT NULL AND e.published_at < %(settled)s
  AND NOT EXISTS (SELECT 1 FROM outbox_inboxentry i
                  WHERE i."group" = %(group)s AND i.event_id = e.event_id)
  AND NOT EXISTS (SELECT 1 FROM outbox_deadletter d
                  WHERE d."group" = %(group)s AND d.event_id = e.event_id)
"""
IN_FLIGHT = """
SELECT count(*) FROM outbox_outboxevent e
WHERE e.event_type = ANY(%(types)s) AND (e.published_at IS NULL OR e.published_at >= %(settled)s)
  AND NOT EXISTS (SELECT 1 FROM outbox_inboxentry i
                  WHERE i."group" = %(group)s AND i.event_id = e.event_id)
  AND NOT EXISTS (SELECT 1 FROM outbox_deadletter d
                  WHERE d."group" = %(group)s AND d.event_id = e.event_id)
"""
DUPLICATED = """
SELECT count(*) FROM (SELECT event_id FROM outbox_inboxentry WHERE "group" = %(group)s
                      GROUP BY event_id HAVING count(*) > 1) d
"""
UNEXPECTED = """
SELECT count(*) FROM outbox_inboxentry i
LEFT JOIN outbox_outboxevent e ON e.event_id = i.event_id
WHERE i."group" = %(group)s AND (e.id IS NULL OR NOT e.event_type = ANY(%(types)s))
"""
OUT_OF_ORDER = """
SELECT count(*) FROM (
  SELECT e.aggregate_version,
         lag(e.aggregate_version) OVER (PARTITION BY e.aggregate_type, e.aggregate_id
                                        ORDER BY i.id) AS previous
  FROM outbox_inboxentry i JOIN outbox_outboxevent e ON e.event_id = i.event_id
  WHERE i."group" = %(group)s
) applied WHERE previous > aggregate_version
"""


@dataclass(frozen=True)
class GroupAudit:
    lost: int
    duplicated: int
    unexpected: int
    out_of_order: int
    in_flight: int

    @property
    def faults(self) -> int:
        return self.lost + self.duplicated + self.unexpected + self.out_of_order


def audit(*, settle_s: float = 0.0) -> dict[str, GroupAudit]:
    """The counts of every registered group (see the module docstring). PostgreSQL only."""
    settled = timezone.now() - timedelta(seconds=settle_s)
    results = {}
    with connection.cursor() as cursor:
        for name, group in sorted(registry.groups.items()):
            params: dict[str, Any] = {
                "group": name,
                "types": list(group.handlers),
                "settled": settled,
            }
            counts = []
            for query in (LOST, DUPLICATED, UNEXPECTED, OUT_OF_ORDER, IN_FLIGHT):
                cursor.execute(query, params)
                counts.append(int(cursor.fetchone()[0]))
            results[name] = GroupAudit(*counts)
    return results


def as_dict(results: dict[str, GroupAudit]) -> dict[str, dict[str, int]]:
    return {name: asdict(counts) for name, counts in results.items()}
