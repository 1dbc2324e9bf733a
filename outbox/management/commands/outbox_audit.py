import json

from django.core.management import BaseCommand, CommandError
from django.db import connection

from outbox.audit import as_dict, audit


class Command(BaseCommand):
    help = (
        "Prove from PostgreSQL alone that every committed event was applied or dead-lettered "
        "by every subscribed group, none twice, none out of its aggregate's order, and that no "
        "inbox row lacks its event. Prints the counts per group; exits 1 on any fault."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--settle",
            type=float,
            default=10.0,
            help="events published within this many seconds count as in flight (default 10)",
        )
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args, **options) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("outbox_audit needs PostgreSQL")
        if options["settle"] < 0:
            raise CommandError("--settle must not be negative")
        results = audit(settle_s=options["settle"])
        if options["json"]:
            self.stdout.write(json.dumps(as_dict(results), indent=2))
        else:
            columns = ("lost", "duplicated", "unexpected", "out_of_order", "in_flight")
            width = max([len("group"), *map(len, results)])
            self.stdout.write(f"{'group':<{width}}  " + "  ".join(f"{c:>12}" for c in columns))
            for name, counts in results.items():
                values = as_dict({name: counts})[name]
                self.stdout.write(
                    f"{name:<{width}}  " + "  ".join(f"{values[c]:>12}" for c in columns)
                )
        faulty = {name: counts.faults for name, counts in results.items() if counts.faults}
        if faulty:
            worst = ", ".join(f"{name} ({count})" for name, count in faulty.items())
            raise CommandError(f"the audit found faults in: {worst}")
