"""Measuring: percentiles, a stopwatch, and CPU time of this process, its children and
its PostgreSQL backends (from ``/proc``, so only for processes on this machine)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, interpolated between ranks."""
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def summary_ms(seconds: list[float]) -> dict[str, float | int]:
    """p50, p95, p99, max and mean in milliseconds of durations in seconds."""
    ordered = sorted(s * 1000 for s in seconds)
    return {
        "p50": round(percentile(ordered, 50), 3),
        "p95": round(percentile(ordered, 95), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3) if ordered else float("nan"),
        "mean": round(sum(ordered) / len(ordered), 3) if ordered else float("nan"),
        "samples": len(ordered),
    }


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds used so far) of a process on this machine, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_groups_cpu(groups: set[int]) -> float:
    """CPU seconds used so far by every live process of these process groups."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat is not None and stat[0] in groups:
                total += stat[1]
    return total


def backend_cpu(pid: int | None) -> float | None:
    """CPU seconds of a PostgreSQL backend, when the server runs on this machine."""
    stat = proc_stat(pid) if pid else None
    return stat[1] if stat else None


class Stopwatch:
    """Wall time of a block, in seconds (``.seconds``)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


class CpuMeter:
    """CPU used over a block by this process (all its threads) and one PostgreSQL backend."""

    def __init__(self, backend_pid: int | None) -> None:
        self.backend_pid = backend_pid
        self.client = 0.0
        self.server: float | None = None

    def __enter__(self) -> CpuMeter:
        self.client = time.process_time()
        self.server = backend_cpu(self.backend_pid)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client = time.process_time() - self.client
        end = backend_cpu(self.backend_pid)
        self.server = None if end is None or self.server is None else end - self.server

    def per_event_ms(self, count: int) -> dict[str, float | None]:
        """Milliseconds of CPU per event: ``client`` (this process), ``postgres`` (or None)."""
        return {
            "client": round(self.client * 1000 / count, 4),
            "postgres": None if self.server is None else round(self.server * 1000 / count, 4),
        }


def cpu_ms(figures: dict[str, float | None]) -> float:
    """Client plus PostgreSQL milliseconds of a ``per_event_ms`` result (PostgreSQL 0 if unknown)."""
    return (figures["client"] or 0.0) + (figures["postgres"] or 0.0)
