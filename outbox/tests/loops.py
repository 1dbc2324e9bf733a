"""Relay and consumer loops, run as child processes by the outbox's tests.

    python -m outbox.tests.loops relay [--once] [--seconds S]
    python -m outbox.tests.loops consume GROUP [--seconds S]

A loop goes over every partition again and again until SIGTERM, or until
``--seconds`` have passed (a bound, so that a failing test leaves no process
behind), then prints what it did as JSON and exits 0. The environment comes
from ``conftest.process_env``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="outbox.tests.loops")
    parser.add_argument("role", choices=["relay", "consume"])
    parser.add_argument("group", nargs="?")
    parser.add_argument("--once", action="store_true", help="one pass over the partitions")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.test_settings")
    import django

    django.setup()
    from outbox import streams
    from outbox.consumer import consume
    from outbox.relay import relay_partition

    stopping = False

    def on_term(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    totals = {"moved": 0, "busy": 0, "passes": 0}
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    while not stopping and time.monotonic() < deadline:
        moved = 0
        for partition in streams.partitions():
            if args.role == "relay":
                result = relay_partition(partition, max_seconds=0.5)
                moved += result.published
            else:
                result = consume(args.group, partition, max_seconds=0.5)
                moved += result.acked
            totals["busy"] += result.busy
        totals["moved"] += moved
        totals["passes"] += 1
        if args.once:
            break
        if not moved:
            time.sleep(0.01)  # idle poll interval
    print(json.dumps(totals), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
