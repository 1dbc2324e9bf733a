import signal
import time

from django.core.management import BaseCommand

from outbox import streams
from outbox.relay import relay_partition
from outbox.tasks import wake_consumers


class Command(BaseCommand):
    help = (
        "Run the relay in the foreground (the Celery worker runs it too; several relays may "
        "run at once: each partition has one active relay at a time)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="relay what is there, then exit")
        parser.add_argument(
            "--interval", type=float, default=0.05, help="idle poll interval, seconds"
        )
        parser.add_argument(
            "--no-wake", action="store_true", help="do not send Celery tasks to wake the consumers"
        )

    def handle(self, *args, **options) -> None:
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        on_batch = None if options["no_wake"] else wake_consumers
        total = 0
        if not options["once"]:
            self.stdout.write(f"relaying {len(streams.partitions())} partition(s); Ctrl-C stops")
        while not self.stopping:
            moved = sum(
                relay_partition(p, on_batch=on_batch).published for p in streams.partitions()
            )
            total += moved
            if options["once"] and moved == 0:
                break
            if moved == 0:
                time.sleep(options["interval"])
        self.stdout.write(f"relayed {total} event(s)")

    def _stop(self, *_args) -> None:
        self.stopping = True
