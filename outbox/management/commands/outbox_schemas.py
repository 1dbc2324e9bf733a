from django.core.management import BaseCommand, CommandError

from outbox import schemas


class Command(BaseCommand):
    help = "Check the event schemas against event_schemas.json, or --write a fresh snapshot."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--write", action="store_true", help="refresh the snapshot")

    def handle(self, *args, **options) -> None:
        breaking, compatible = schemas.compare(schemas.load_snapshot(), schemas.current())
        if breaking:
            raise CommandError(
                "breaking schema change without a version bump: " + "; ".join(breaking)
            )
        if options["write"]:
            path = schemas.write_snapshot()
            self.stdout.write(f"wrote {path.name} ({len(schemas.current())} event schemas)")
            return
        if compatible:
            raise CommandError(
                "event schemas differ from the snapshot (compatibly): "
                + "; ".join(compatible)
                + " -- run manage.py outbox_schemas --write"
            )
        self.stdout.write(f"{len(schemas.current())} event schemas match the snapshot")
