from django.core.management import BaseCommand, CommandError

from outbox import layout as layouts
from outbox.repartition import Refused, repartition


class Command(BaseCommand):
    help = (
        "Change the number of partitions (streams) of the event log on a live system: pauses "
        "the relays, waits until every group has applied what the streams hold, switches, "
        "resumes. Refuses, changing nothing, when that does not happen within --timeout."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("partitions", type=int, help="the new number of partitions")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")

    def handle(self, *args, **options) -> None:
        before = layouts.current()
        try:
            after = repartition(options["partitions"], timeout_s=options["timeout"])
        except Refused as exc:
            raise CommandError(f"refused: {exc}") from None
        if after.generation == before.generation:
            self.stdout.write(f"the event log has {after.partitions} partition(s) already")
        else:
            self.stdout.write(
                f"the event log now has {after.partitions} partition(s) "
                f"(was {before.partitions}); the readers take them up within a second"
            )
