"""The worker's liveness: each process with readers leaves a heartbeat file; a check reads them.

Every few seconds a thread in each process that runs readers (``outbox.runtime``)
writes ``<host>-<pid>.json`` in the heartbeat folder (``OUTBOX_HEARTBEAT_DIR``):
when, and for each reader whether its thread is alive and when its loop last
turned. ``check`` (``manage.py outbox_worker_alive``, for a supervisor on the
same host) says whether this host's worker is alive: at least one fresh
heartbeat from a live process, every reader thread alive and none stuck. It
reads local files only, so a database or Redis outage (which readers wait out)
does not make the worker look dead.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from outbox.conf import conf

if TYPE_CHECKING:
    from outbox.runtime import Runtime

logger = logging.getLogger(__name__)

INTERVAL_S = 5.0  # how often a process writes its heartbeat
FRESH_S = 30.0  # a heartbeat older than this is of a process that stopped beating
STUCK_S = 120.0  # a reader whose loop has not turned for this long is stuck


def folder() -> Path:
    """The heartbeat folder: ``OUTBOX_HEARTBEAT_DIR``, or one per stream prefix in the temp dir."""
    configured = conf.HEARTBEAT_DIR
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"outbox-heartbeat-{conf.STREAM_PREFIX}"


def _host() -> str:
    return socket.gethostname()


class Heartbeat(threading.Thread):
    """Writes this process's heartbeat every ``interval`` seconds until stopped."""

    def __init__(self, runtime: Runtime, *, interval: float = INTERVAL_S) -> None:
        super().__init__(name="outbox-heartbeat", daemon=True)
        self.runtime = runtime
        self.interval = interval
        self.stopping = threading.Event()
        self.path = folder() / f"{_host()}-{os.getpid()}.json"

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "host": _host(),
            "pid": os.getpid(),
            "at": time.time(),
            "readers": {
                reader.role: {
                    "alive": reader.is_alive(),
                    "looped_s_ago": round(now - reader.looped_at, 3),
                }
                for reader in self.runtime.readers
            },
        }

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.state()))
        partial.replace(self.path)  # atomic: a check never reads half a file

    def run(self) -> None:
        while True:
            try:
                self.write()
            except OSError as exc:
                logger.warning("outbox heartbeat: cannot write %s: %s", self.path, exc)
            if self.stopping.wait(self.interval):
                return

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=self.interval + 1)
        self.path.unlink(missing_ok=True)


@dataclass
class Verdict:
    alive: bool
    summary: str
    processes: list[dict[str, Any]] = field(default_factory=list)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:  # a killed process not yet reaped (a zombie) still exists, but is dead
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc here: it exists
    return state not in ("Z", "X")


def check(*, fresh_s: float = FRESH_S, stuck_s: float = STUCK_S) -> Verdict:
    """Whether this host's worker is alive, from its processes' heartbeats.

    Heartbeats of processes that are gone are removed. Alive means: at least one
    process wrote within ``fresh_s``, and in each such process every reader's
    thread is alive and its loop turned within ``stuck_s``.
    """
    host = _host()
    now = time.time()
    processes: list[dict[str, Any]] = []
    for path in sorted(folder().glob(f"{host}-*.json")):
        try:
            state = json.loads(path.read_text())
            pid = int(state["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or not ours
        if not _pid_alive(pid):
            path.unlink(missing_ok=True)
            continue
        state["age_s"] = round(now - float(state.get("at", 0)), 1)
        processes.append(state)
    fresh = [p for p in processes if p["age_s"] <= fresh_s]
    if not fresh:
        stale = f" (newest {min(p['age_s'] for p in processes):.0f} s old)" if processes else ""
        return Verdict(False, f"no worker process on {host} wrote a heartbeat{stale}", processes)
    problems = []
    for process in fresh:
        for role, reader in sorted(process.get("readers", {}).items()):
            if not reader.get("alive"):
                problems.append(f"process {process['pid']}: the {role} reader has stopped")
            elif float(reader.get("looped_s_ago", 0)) + process["age_s"] > stuck_s:
                problems.append(
                    f"process {process['pid']}: the {role} reader has not moved for "
                    f"{float(reader['looped_s_ago']) + process['age_s']:.0f} s"
                )
    if problems:
        return Verdict(False, "; ".join(problems), processes)
    readers = sum(len(p.get("readers", {})) for p in fresh)
    return Verdict(
        True, f"worker alive on {host}: {len(fresh)} process(es), {readers} reader(s)", processes
    )
