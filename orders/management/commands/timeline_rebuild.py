"""Rebuild the order timeline read model from the event log."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from orders import services
from orders.handlers import TIMELINE_EVENT_TYPES, timeline
from orders.models import TimelineEntry
from outbox.log import read_log


class Command(BaseCommand):
    help = (
        "Delete the order timeline and rebuild it from the event log, applying the same "
        "projection as the orders-timeline consumer. Only events still in the log "
        "(see OUTBOX_RETENTION_DAYS) come back."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--order", type=int, metavar="ID", help="rebuild the timeline of this order only"
        )

    def handle(self, *args: Any, order: int | None = None, **options: Any) -> None:
        skipped = 0
        # One transaction: readers see the old timeline or the new one, never half of it.
        with transaction.atomic():
            entries = TimelineEntry.objects.all()
            if order is not None:
                entries = entries.filter(order_id=order)
            entries.delete()
            applied = 0
            only: dict[str, object] | None = {"order_id": order} if order is not None else None
            for message in read_log(event_types=TIMELINE_EVENT_TYPES, payload=only):
                handler = timeline.handlers[message.type]
                if message.version > handler.max_version:
                    # The live consumer dead-letters these too: never guess at a newer schema.
                    skipped += 1
                    continue
                if services.timeline_apply(message=handler.upcast(message)):
                    applied += 1
        scope = f" for order {order}" if order is not None else ""
        self.stdout.write(f"Rebuilt the timeline{scope}: {applied} entries.")
        if skipped:
            self.stderr.write(f"Skipped {skipped} event(s) newer than the projection handles.")
