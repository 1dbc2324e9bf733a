from django.core.management import BaseCommand, CommandError

from outbox.management.commands._runner import run_in_foreground
from outbox.registry import registry
from outbox.runtime import Runtime


class Command(BaseCommand):
    help = (
        "Run consumer groups in the foreground, as the Celery worker's processes do: each "
        "group waits on its streams (XREADGROUP BLOCK) and shares the partitions with every "
        "other reader of the group, here or in the workers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--group", action="append", help="a group to run (default: all)")

    def handle(self, *args, **options) -> None:
        groups = options["group"] or sorted(registry.groups)
        unknown = sorted(set(groups) - set(registry.groups))
        if unknown:
            known = ", ".join(sorted(registry.groups))
            raise CommandError(f"unknown consumer group {unknown[0]!r} (known: {known})")
        run_in_foreground(
            self, Runtime(relay=False, groups=groups), f"consuming for {', '.join(groups)}"
        )
