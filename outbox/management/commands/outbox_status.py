import json

from django.core.management import BaseCommand

from outbox.status import status

CORE_KEYS = {
    "unpublished",
    "oldest_unpublished_age_s",
    "published",
    "dead_letters",
    "partitions",
    "redis",
    "redis_marker",
    "groups",
}


class Command(BaseCommand):
    help = "Show the outbox's backlog: unpublished events, dead letters, and each group's lag."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON instead of a table")

    def handle(self, *args, **options) -> None:
        report = status()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
            return
        self.stdout.write(f"unpublished events        {report['unpublished']}")
        self.stdout.write(f"oldest unpublished (s)    {report['oldest_unpublished_age_s']}")
        self.stdout.write(f"published events in log   {report['published']}")
        self.stdout.write(f"open dead letters         {report['dead_letters']}")
        self.stdout.write(f"partitions                {report['partitions']}")
        self.stdout.write(
            f"redis                     {report['redis']} (marker {'present' if report['redis_marker'] else 'missing'})"
        )
        for key in sorted(set(report) - CORE_KEYS):  # from OUTBOX_STATUS_HOOKS
            self.stdout.write(f"{key.replace('_', ' '):<26}{report[key]}")
        self.stdout.write("")
        self.stdout.write(f"{'group':<24}{'pending':>10}{'lag':>10}{'dead':>8}")
        for name, row in report["groups"].items():
            self.stdout.write(
                f"{name:<24}{row['pending']:>10}{row['lag']:>10}{row['dead_letters']:>8}"
            )
