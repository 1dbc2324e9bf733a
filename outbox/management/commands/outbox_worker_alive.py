from django.core.management import BaseCommand, CommandError

from outbox import heartbeat


class Command(BaseCommand):
    help = (
        "Exit 0 when this host's worker is alive: its processes wrote a heartbeat lately and "
        "every reader thread in them is alive and moving; else exit 1 with one line. For a "
        "supervisor's liveness probe, run on the worker's host (it reads local files only)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--max-age",
            type=float,
            default=heartbeat.FRESH_S,
            help="seconds a heartbeat stays fresh (default %(default)s)",
        )
        parser.add_argument(
            "--stuck-after",
            type=float,
            default=heartbeat.STUCK_S,
            help="seconds without a turn of its loop after which a reader is stuck "
            "(default %(default)s)",
        )

    def handle(self, *args, **options) -> None:
        verdict = heartbeat.check(fresh_s=options["max_age"], stuck_s=options["stuck_after"])
        if not verdict.alive:
            raise CommandError(f"worker not alive: {verdict.summary}")
        self.stdout.write(verdict.summary)
