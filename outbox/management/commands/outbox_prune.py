from django.conf import settings
from django.core.management import BaseCommand, CommandError

from outbox.maintenance import prune


class Command(BaseCommand):
    help = "Delete published events (and inbox rows) older than the retention period."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="retention in days (default: OUTBOX_RETENTION_DAYS)",
        )

    def handle(self, *args, **options) -> None:
        days = options["days"] if options["days"] is not None else settings.OUTBOX_RETENTION_DAYS
        if days < 0:
            raise CommandError("--days must be zero or more")
        deleted = prune(retention_days=days)
        self.stdout.write(f"pruned {deleted} published event(s) older than {days} day(s)")
