"""The shop's processes (web, worker, beat) and a small supervisor that keeps them running.

``make run`` uses it on one machine; the benchmark and the fault tests use it to
start the system as a user would. In production a platform supervisor does the
same job (see the Procfile and the systemd units in ``deploy/``).

This module imports nothing of Django: it runs the processes, it is not one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO

PY = sys.executable


def commands(
    env: Mapping[str, str], *, dev: bool = False, schedule: str = ".celerybeat-schedule"
) -> dict[str, list[str]]:
    """The command line of each process, from the environment (see the README's table)."""
    host = env.get("HOST", "127.0.0.1:8000")
    sqlite = not env.get("DATABASE_URL", "").startswith(("postgres", "pgsql"))
    # SQLite has no advisory locks: one worker process keeps relay and consumers in order.
    concurrency = "1" if sqlite else env.get("WORKER_CONCURRENCY", "2")
    loglevel = env.get("LOG_LEVEL", "INFO")
    if dev:
        web = [PY, "manage.py", "runserver", host]
    else:
        web = [
            PY,
            "-m",
            "gunicorn",
            "shop.wsgi:application",
            "--bind",
            host,
            "--workers",
            env.get("WEB_CONCURRENCY", "3"),
            "--graceful-timeout",
            "10",
            "--log-level",
            "warning",
        ]
    return {
        "web": web,
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
        ],
        "beat": [
            PY,
            "-m",
            "celery",
            "-A",
            "shop",
            "beat",
            f"--loglevel={loglevel}",
            "--schedule",
            schedule,
        ],
    }


def prepare_metrics_dir(env: Mapping[str, str]) -> None:
    """Empty (or create) ``PROMETHEUS_MULTIPROC_DIR`` before any process of a run starts.

    The metric files of an earlier run's processes would otherwise add up with these.
    """
    path = env.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff_s: float = 1.0


@dataclass
class Supervisor:
    """Starts each process, restarts one that exits (with backoff), stops all on request.

    Every line it prints starts with ``supervisor:``; a restart says which process
    exited, how, and how many times it has been restarted.
    """

    argvs: Mapping[str, list[str]]
    env: Mapping[str, str]
    cwd: str | None = None
    out: IO[str] | None = None  # where the children's output goes (default: inherited)
    say: Callable[[str], None] = field(default=lambda line: print(line, flush=True))
    children: dict[str, Child] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        for name, argv in self.argvs.items():
            child = Child(name, list(argv))
            self.children[name] = child
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        child.started_at = time.monotonic()
        child.proc = subprocess.Popen(  # noqa: S603 - the shop's own command lines
            child.argv,
            env=dict(self.env),
            cwd=self.cwd,
            stdout=self.out,
            stderr=subprocess.STDOUT if self.out is not None else None,
            start_new_session=True,  # a Ctrl-C reaches us; we stop the children in order
        )

    def watch_once(self) -> None:
        """Restart whatever exited since the last look (waiting its backoff first)."""
        for child in self.children.values():
            proc = child.proc
            if proc is None or proc.poll() is None or self.stopping.is_set():
                continue
            ran = time.monotonic() - child.started_at
            # A process that ran a while starts again at once; one that keeps dying waits longer.
            child.backoff_s = 1.0 if ran > 60 else min(child.backoff_s * 2, 30.0)
            child.restarts += 1
            self.say(
                f"supervisor: {child.name} exited with code {proc.returncode} after {ran:.0f} s; "
                f"restarting it in {child.backoff_s:.0f} s (restart #{child.restarts})"
            )
            if self.stopping.wait(child.backoff_s):
                return
            self._spawn(child)

    def run(self) -> None:
        """Supervise until SIGINT or SIGTERM, then stop everything."""
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        while not self.stopping.wait(0.5):
            self.watch_once()
        self.stop()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every child (warm shutdown), SIGKILL what is left after ``timeout``."""
        self.stopping.set()
        live = [c.proc for c in self.children.values() if c.proc is not None]
        live = [proc for proc in live if proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)  # its main process shuts down in order
        deadline = time.monotonic() + timeout
        for proc in live:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        total = sum(c.restarts for c in self.children.values())
        self.say(f"supervisor: stopped ({total} restart(s))")


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
