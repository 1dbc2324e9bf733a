from django.core.management import BaseCommand, CommandError

from outbox import replay
from outbox.management.commands._base import Progress, parse_when


class Command(BaseCommand):
    help = (
        "Republish events from the outbox (the relay sends them again, in their original order; "
        "groups that applied an event already skip it)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="only events that occurred at or after this ISO time")
        parser.add_argument("--until", help="only events that occurred at or before this ISO time")
        parser.add_argument(
            "--type", dest="event_type", help="only this event type, e.g. orders.OrderCreated"
        )
        parser.add_argument(
            "--aggregate", help="only this aggregate: TYPE or TYPE:ID, e.g. order:42"
        )
        parser.add_argument("--group", help="only event types this consumer group subscribes to")
        parser.add_argument("--dry-run", action="store_true", help="list what would be republished")
        parser.add_argument("--limit", type=int, default=20, help="rows to list with --dry-run")

    def handle(self, *args, **options) -> None:
        flt = replay.ReplayFilter(
            since=parse_when(options["since"], "--since"),
            until=parse_when(options["until"], "--until"),
            event_type=options["event_type"],
            aggregate=options["aggregate"],
            group=options["group"],
        )
        try:
            qs = replay.select(flt)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        total = qs.count()
        if options["dry_run"]:
            for event in qs[: options["limit"]]:
                self.stdout.write(
                    f"#{event.pk} {event.occurred_at.isoformat()} {event.event_type} "
                    f"v{event.version} {event.aggregate_type}:{event.aggregate_id}"
                )
            if total > options["limit"]:
                self.stdout.write(f"... and {total - options['limit']} more")
            self.stdout.write(f"{total} event(s) would be republished (dry run)")
            return
        count = replay.replay(qs, progress=Progress(total))
        self.stdout.write(self.style.SUCCESS(f"{count} event(s) marked for republishing"))
