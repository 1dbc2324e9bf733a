"""Helpers shared by the outbox's management commands."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from django.core.management import CommandError
from django.utils.dateparse import parse_date, parse_datetime


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO date or datetime; naive values are taken as UTC. Raises CommandError."""
    if value is None:
        return None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            day = parse_date(value)
            parsed = datetime(day.year, day.month, day.day) if day else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise CommandError(
            f"{option}: {value!r} is not an ISO date or datetime (e.g. 2026-11-26T12:00:00Z)"
        )
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Progress:
    """A one-line progress bar on a terminal; silent when the output is not a terminal."""

    def __init__(self, total: int, stream=None, width: int = 30) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.enabled = total > 0 and self.stream.isatty()

    def __call__(self, step: int) -> None:
        self.done += step
        if self.enabled:
            filled = int(self.width * self.done / self.total)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total}")
            if self.done >= self.total:
                self.stream.write("\n")
            self.stream.flush()
