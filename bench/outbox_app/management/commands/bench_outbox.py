"""``manage.py bench_outbox``: the outbox on the real path, a table and the figures as JSON.

Run it with ``make bench-outbox`` (settings ``shop.bench_settings``); bench/README.md
says what each figure means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management import BaseCommand, CommandError

from bench.outbox_app import phases, report
from bench.outbox_app.workspace import BenchError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _rates(text: str) -> tuple[float, ...]:
    rates = tuple(_positive_float(part.strip()) for part in text.split(",") if part.strip())
    if not rates:
        raise argparse.ArgumentTypeError("give at least one rate, e.g. 200,500")
    return rates


def _phases(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(chosen) - set(phases.PHASES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown phase {unknown[0]!r} (known: {', '.join(phases.PHASES)})"
            if unknown
            else "give at least one phase"
        )
    return chosen


class Command(BaseCommand):
    help = (
        "Benchmark the outbox: relay and consumer throughput, commit-to-handled latency "
        "through the worker and the foreground commands, optionally the flat cost of a long "
        "history. Needs shop.bench_settings and a PostgreSQL database of its own "
        "(make bench-outbox)."
    )

    def add_arguments(self, parser) -> None:
        d = phases.Plan(phases=phases.DEFAULT_PHASES)
        parser.add_argument("--json", type=Path, help="write the figures to this file")
        parser.add_argument(
            "--phases",
            type=_phases,
            default=phases.DEFAULT_PHASES,
            help=f"comma-separated, of {','.join(phases.PHASES)} "
            f"(default: {','.join(phases.DEFAULT_PHASES)})",
        )
        parser.add_argument(
            "--flat-cost",
            action="store_true",
            help="also run the flat-cost phase (a million retained events; a few minutes)",
        )
        parser.add_argument(
            "--events", type=_positive_int, default=d.events, help="rows per relay run"
        )
        parser.add_argument(
            "--runs", type=_positive_int, default=d.runs, help="relay runs and raw runs each"
        )
        parser.add_argument(
            "--consumer-events",
            type=_positive_int,
            default=d.consumer_events,
            help="events per consumer group",
        )
        parser.add_argument(
            "--rates",
            type=_rates,
            default=d.rates,
            help="offered events/s of the latency phases, comma-separated (default 200,500)",
        )
        parser.add_argument(
            "--duration",
            type=_positive_float,
            default=d.duration,
            help="seconds of offered load per rate",
        )
        parser.add_argument(
            "--producers",
            type=_positive_int,
            default=d.producers,
            help="producer threads of the latency phases",
        )
        parser.add_argument(
            "--drain-timeout",
            type=_positive_float,
            default=d.drain_timeout,
            help="seconds to wait for the last events after the offered load",
        )
        parser.add_argument(
            "--retained",
            type=_positive_int,
            default=d.retained,
            help="published events the flat-cost phase keeps in the outbox",
        )
        parser.add_argument(
            "--flat-runs",
            type=_positive_int,
            default=d.flat_runs,
            help="relay runs on each table of the flat-cost phase",
        )

    def handle(self, *args, **options) -> None:
        chosen = options["phases"]
        if options["flat_cost"] and "flat-cost" not in chosen:
            chosen = (*chosen, "flat-cost")
        plan = phases.Plan(
            phases=chosen,
            events=options["events"],
            runs=options["runs"],
            consumer_events=options["consumer_events"],
            rates=options["rates"],
            duration=options["duration"],
            producers=options["producers"],
            drain_timeout=options["drain_timeout"],
            retained=options["retained"],
            flat_runs=options["flat_runs"],
        )
        try:
            figures = phases.run(plan, say=self.stderr.write)
        except BenchError as exc:
            raise CommandError(str(exc)) from None
        report.print_table(figures, self.stdout.write)
        if options["json"]:
            report.write_json(figures, options["json"])
            self.stdout.write(f"wrote {options['json']}")
        lost, duplicated = phases.lost_and_duplicated(figures)
        if lost or duplicated:
            raise CommandError(
                f"{lost} event(s) were not handled within the drain timeout and "
                f"{duplicated} were applied twice"
            )
