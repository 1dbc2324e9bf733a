import signal
import threading

from django.core.management import BaseCommand, CommandError
from django.db import connection

from outbox import streams
from outbox.consumer import consume
from outbox.registry import registry


class Command(BaseCommand):
    help = (
        "Run consumer groups in the foreground, each (group, partition) in a thread that "
        "waits on the stream (XREADGROUP BLOCK): lower latency than the Celery tasks, which "
        "step aside while these hold the leases. Safe beside workers and other copies."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--group", action="append", help="a group to run (default: all)")
        parser.add_argument("--partition", type=int, action="append", help="default: all")
        parser.add_argument("--block-ms", type=int, default=100, help="XREADGROUP block, ms")

    def handle(self, *args, **options) -> None:
        groups = options["group"] or sorted(registry.groups)
        unknown = sorted(set(groups) - set(registry.groups))
        if unknown:
            known = ", ".join(sorted(registry.groups))
            raise CommandError(f"unknown consumer group {unknown[0]!r} (known: {known})")
        partitions = options["partition"] or list(streams.partitions())
        bad = [p for p in partitions if p not in streams.partitions()]
        if bad:
            raise CommandError(
                f"partition {bad[0]} does not exist (0..{len(streams.partitions()) - 1})"
            )
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        streams.ensure_groups()

        def loop(group: str, partition: int) -> None:
            try:
                while not stopping.is_set():
                    result = consume(
                        group, partition, block_ms=options["block_ms"], max_seconds=1.0
                    )
                    if result.busy or result.retry_at is not None:
                        # Another process holds the lease, or a failed entry waits for its backoff.
                        stopping.wait(0.2)
            finally:
                connection.close()

        threads = [
            threading.Thread(target=loop, args=(g, p), name=f"{g}:{p}", daemon=True)
            for g in groups
            for p in partitions
        ]
        for thread in threads:
            thread.start()
        self.stdout.write(f"consuming {len(threads)} (group, partition) pair(s); Ctrl-C stops")
        while any(t.is_alive() for t in threads):
            for thread in threads:
                thread.join(timeout=0.5)
