import signal

from django.core.management import BaseCommand

from outbox import streams
from outbox.management.commands._runner import run_in_foreground
from outbox.relay import relay_partition
from outbox.runtime import Runtime


class Command(BaseCommand):
    help = (
        "Run the relay in the foreground (the Celery worker's processes run it too; any "
        "number may run at once: each partition has one active relay at a time)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="relay what is there, then exit")

    def handle(self, *args, **options) -> None:
        if not options["once"]:
            run_in_foreground(self, Runtime(groups=[]), "relaying")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # finish this pass
        total = 0
        while not stopping:
            moved = sum(relay_partition(p).published for p in streams.partitions())
            total += moved
            if moved == 0:
                break
        self.stdout.write(f"relayed {total} event(s)")
