"""Running readers in the foreground, for ``outbox_relay`` and ``outbox_consume``."""

from __future__ import annotations

import signal
import threading

from django.core.management import BaseCommand

from outbox.runtime import Runtime


def run_in_foreground(command: BaseCommand, runtime: Runtime, what: str) -> None:
    """Run the readers until SIGTERM or Ctrl-C, then stop them (leases given back)."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    runtime.start()
    command.stdout.write(f"{what}; Ctrl-C stops")
    while not stopping.wait(0.5):
        if not runtime.alive():
            break
    runtime.stop()
    command.stdout.write("stopped")
