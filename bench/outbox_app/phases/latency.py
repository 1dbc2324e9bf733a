"""Commit-to-handled latency at offered rates, through the runtime's own processes.

Two paths, each started once for all its rates, warmed up, then measured:

- ``worker``: ``celery -A shop worker`` and ``celery -A shop beat`` as ``make run``
  starts them (``shop.processes.commands``, at their defaults). Each pool process
  runs the readers: a commit NOTIFYs, the relay reader LISTENing wakes and XADDs,
  the group readers blocked in XREADGROUP apply the entries.
- ``foreground``: ``manage.py outbox_relay`` and ``manage.py outbox_consume``, no
  options: the same readers in two plain processes, no Celery.

A producer publishes one event per transaction on an open-loop schedule: event n
is due at start + n / rate whatever happened before it. Its commit time is taken
by an ``on_commit`` callback registered before ``publish()``; each handler notes the
time its own transaction committed (see ``handlers``). Latency = handled - committed.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from bench.outbox_app.events import OrderPlaced
from bench.outbox_app.handlers import handled_key
from bench.outbox_app.measuring import (
    backend_cpu,
    percentile,
    process_groups_cpu,
    summary_ms,
)
from bench.outbox_app.phases.relay import select_plan
from bench.outbox_app.workspace import (
    AGGREGATE_TYPE,
    BenchError,
    Workspace,
    all_groups,
    backend_pid,
    bench_groups,
    order_payload,
)
from outbox import layout, lease, publish, streams
from outbox.consumer import lease_name
from outbox.relay import RELAY_LEASE
from outbox.runtime import RELAY_ROLE, application_name
from shop.processes import commands

PATHS = ("worker", "foreground")
START_TIMEOUT_S = 90.0
WARM_UP_EVENTS = 40
# Lines of the children's logs that say something went wrong (Celery's and Django's formats).
PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
TASK_DONE = re.compile(r"Task (outbox\.tasks\.\w+|[\w.]+)\[[^\]]+\] succeeded")
POLL_MOVED = re.compile(r"poll moved (\d+) event")
LOCKS = (
    "SELECT classid::bigint, objid::int, pid FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 2 AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
READER_SESSIONS = (
    "SELECT pid FROM pg_stat_activity "
    "WHERE application_name = ANY(%s) AND datname = current_database()"
)
MEMBERS = (
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE application_name = %s AND datname = current_database()"
)


class Children:
    """The processes of one path, each in a session of its own, with a log file each."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=settings.SETTINGS_MODULE,
            BENCH_STREAM_PREFIX=settings.OUTBOX_STREAM_PREFIX,
            PYTHONUNBUFFERED="1",
        )
        return env

    def spawn(self, name: str, argv: list[str]) -> None:
        with (self.logs / f"{name}.log").open("w") as log:
            self.procs[name] = subprocess.Popen(
                argv,
                cwd=settings.BASE_DIR,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check(self) -> None:
        """Raise, with the end of each log, when a process exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tails = "\n".join(
                    f"--- {other}.log\n{self.log(other)[-1500:]}" for other in self.procs
                )
                raise BenchError(f"{name} exited with code {proc.returncode}:\n{tails}")

    def pgids(self) -> set[int]:
        return {proc.pid for proc in self.procs.values()}  # each leads its own group

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM each main process (readers give their leases back), SIGKILL what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # pool processes a killed parent left
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def start(children: Children, path: str) -> tuple[str, int]:
    """Start a path's processes; returns how they run and how many processes read per role."""
    if path == "worker":
        argvs = commands(children.env(), schedule=str(children.logs / "beat-schedule"))
        worker, beat = argvs["worker"], argvs["beat"]
        children.spawn("worker", worker)
        children.spawn("beat", beat)
        concurrency = next(
            int(arg.split("=", 1)[1]) for arg in worker if arg.startswith("--concurrency=")
        )
        how = (
            f"{' '.join(worker[2:])} + {' '.join(beat[2:6])}, as make run starts them; "
            "the relay and every group read in each pool process"
        )
        return how, concurrency
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    children.spawn("relay", [sys.executable, manage, "outbox_relay"])
    children.spawn("consume", [sys.executable, manage, "outbox_consume"])
    return "manage.py outbox_relay + manage.py outbox_consume (every group), no options", 1


def wait_balanced(children: Children, members: int) -> None:
    """Wait until the relay's and the bench groups' leases are all held, shared out evenly."""
    current = layout.current()
    roles = [(RELAY_ROLE, RELAY_LEASE)] + [(g, lease_name(g)) for g in bench_groups()]
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        children.check()
        state = lease_state(roles, current.partitions)
        if all(
            sessions >= members
            and held == set(current.range())
            and max(per_pid.values(), default=0) <= math.ceil(current.partitions / sessions)
            for sessions, held, per_pid in state.values()
        ):
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"the readers did not take and share out their leases within "
                f"{START_TIMEOUT_S:.0f} s: {state}"
            )
        time.sleep(0.2)


def lease_state(
    roles: list[tuple[str, str]], partitions: int
) -> dict[str, tuple[int, set[int], Counter[int]]]:
    """Per role: its reader sessions, the partitions held, and how many each backend holds."""
    with connection.cursor() as cursor:
        cursor.execute(LOCKS)
        locks = cursor.fetchall()
        state = {}
        for role, name in roles:
            cursor.execute(MEMBERS, [application_name(role)])
            sessions = cursor.fetchone()[0]
            key = lease.name_key(name) & 0xFFFFFFFF  # pg_locks shows the key as an oid
            mine = [(partition, pid) for k1, partition, pid in locks if k1 == key]
            state[role] = (
                sessions,
                {partition for partition, _ in mine if partition < partitions},
                Counter(pid for _, pid in mine),
            )
    return state


def handled_count(run: str) -> int:
    from bench.outbox_app.models import Applied

    return Applied.objects.filter(run=run).count()


def warm_up(ws: Workspace, children: Children, run: str) -> None:
    """Publish a few events over every partition; wait until every bench group applied them."""
    for n, order_id in enumerate(ws.order_ids(WARM_UP_EVENTS)):
        with transaction.atomic():
            publish(OrderPlaced(**order_payload(run, n, order_id)))
    expected = WARM_UP_EVENTS * len(bench_groups())
    deadline = time.monotonic() + 60
    while handled_count(run) < expected:
        children.check()
        if time.monotonic() > deadline:
            raise BenchError(
                f"the warm-up events were not handled within 60 s "
                f"({handled_count(run)} of {expected} applications)"
            )
        time.sleep(0.05)


def produce(ws: Workspace, run: str, *, rate: float, duration: float, threads: int) -> tuple:
    """Publish one event per transaction on an open-loop schedule at ``rate``.

    A few producer threads, each with its own connection, keep the schedule when
    one commit is slow. Returns each event's commit time and the producer's figures.
    """
    count = int(rate * duration)
    events = [
        OrderPlaced(**order_payload(run, n, order_id, track=True))
        for n, order_id in enumerate(ws.order_ids(count))
    ]
    commits = [0.0] * count
    lags = [0.0] * count
    numbers = iter(range(count))
    lock = threading.Lock()
    errors: list[BaseException] = []
    server_cpu: list[float] = []  # minus each backend's CPU at the start, plus at the end
    start = 0.0

    def stamp(n: int) -> None:
        commits[n] = time.time()

    def producer(ready: threading.Barrier) -> None:
        pid = None
        try:
            pid = backend_pid()  # connects before the first event is due
            server_cpu.append(-(backend_cpu(pid) or 0.0))
            ready.wait()
            go.wait()
            while not errors:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    lags[n] = -delay
                with transaction.atomic():
                    transaction.on_commit(partial(stamp, n))
                    publish(events[n])
        except threading.BrokenBarrierError:
            pass  # another producer failed to start: its error is reported
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            ready.abort()
        finally:
            if pid is not None:
                server_cpu.append(backend_cpu(pid) or 0.0)
            connection.close()

    ready = threading.Barrier(threads + 1)  # every producer connected
    go = threading.Event()  # ``start`` is set
    workers = [
        threading.Thread(target=producer, args=(ready,), daemon=True) for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError:
        ready.abort()
        errors.append(BenchError("the producer threads did not connect within 60 s"))
    cpu = time.process_time()
    start = time.monotonic() + 0.01
    go.set()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    cpu_s = time.process_time() - cpu
    if errors:
        raise errors[0]
    lags.sort()
    on_machine = backend_cpu(backend_pid()) is not None
    return commits, {
        "events": count,
        "threads": threads,
        "achieved_rate": round(count / elapsed, 1),
        "lag_p99_ms": round(percentile(lags, 99) * 1000, 2),
        "lag_max_ms": round(lags[-1] * 1000, 2),
        "cpu_ms_per_event": {
            "client": round(cpu_s * 1000 / count, 3),
            "postgres": round(sum(server_cpu) * 1000 / count, 3) if on_machine else None,
        },
    }


def collect(
    children: Children, run: str, count: int, timeout: float
) -> dict[str, dict[int, float]]:
    """Wait (at most ``timeout``) until every group noted every event; their commit times."""
    client = streams.get_redis()
    deadline = time.monotonic() + timeout
    groups = bench_groups()
    while time.monotonic() < deadline:
        if all(client.hlen(handled_key(run, g)) >= count for g in groups):
            break
        children.check()
        time.sleep(0.05)
    return {
        g: {int(n): float(t) for n, t in client.hgetall(handled_key(run, g)).items()}
        for g in groups
    }


def published_at(run: str) -> dict[int, float]:
    """When the relay marked each event of a run published (right after its XADD)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (payload->>'n')::int, extract(epoch FROM published_at)::float8 "
            "FROM outbox_outboxevent WHERE aggregate_type = %s AND payload->>'run' = %s "
            "AND published_at IS NOT NULL",
            [AGGREGATE_TYPE, run],
        )
        return dict(cursor.fetchall())


def duplicates(run: str, group: str) -> int:
    """Events of a run that a group applied more than once (the inbox should make it 0)."""
    from bench.outbox_app.models import Applied

    return sum(
        row["c"] - 1
        for row in Applied.objects.filter(run=run, group=group)
        .values("n")
        .annotate(c=Count("id"))
        .filter(c__gt=1)
    )


def readers_backend_cpu() -> dict[int, float]:
    """CPU seconds so far of each database session of a reader (they name themselves)."""
    names = [application_name(role) for role in [RELAY_ROLE, *all_groups()]]
    with connection.cursor() as cursor:
        cursor.execute(READER_SESSIONS, [names])
        pids = [row[0] for row in cursor.fetchall()]
    return {pid: cpu for pid in pids if (cpu := backend_cpu(pid)) is not None}


def measure(
    ws: Workspace,
    children: Children,
    run: str,
    *,
    rate: float,
    duration: float,
    producers: int,
    drain_timeout: float,
) -> dict:
    """One offered rate: produce, wait for the groups, compute the figures."""
    pgids = children.pgids()
    pipeline_cpu = process_groups_cpu(pgids)
    sessions_cpu = readers_backend_cpu()
    commits, producer = produce(ws, run, rate=rate, duration=duration, threads=producers)
    handled = collect(children, run, len(commits), drain_timeout)
    pipeline_cpu = process_groups_cpu(pgids) - pipeline_cpu
    sessions_after = readers_backend_cpu()
    readers_pg = sum(
        sessions_after[pid] - cpu for pid, cpu in sessions_cpu.items() if pid in sessions_after
    )
    published = published_at(run)
    row = {
        "offered_rate": rate,
        "duration_s": duration,
        "producer": producer,
        # The path's processes, from the first commit until the last event was handled:
        # their own CPU, not PostgreSQL's.
        "pipeline_cpu_ms_per_event": round(pipeline_cpu * 1000 / len(commits), 3),
        # The PostgreSQL backends of the readers' sessions over the same time (None when
        # PostgreSQL runs elsewhere).
        "readers_postgres_cpu_ms_per_event": round(readers_pg * 1000 / len(commits), 3)
        if sessions_cpu
        else None,
        # How the relay's SELECT is planned on the table as this rate left it.
        "relay_select_plan": select_plan(),
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "relay_stage_ms": summary_ms(
            [published[n] - commits[n] for n in range(len(commits)) if n in published]
        ),
        "groups": {},
    }
    for group, stamps in handled.items():
        delays = [stamps[n] - commits[n] for n in range(len(commits)) if n in stamps]
        row["groups"][group] = {
            **summary_ms(delays),
            "handled": len(stamps),
            "lost": len(commits) - len(stamps),
            "duplicates": duplicates(run, group),
            "consumer_stage_ms": summary_ms(
                [stamps[n] - published[n] for n in stamps if n in published]
            ),
        }
    return row


def log_findings(children: Children) -> dict:
    """What the children's logs say: tasks run, events the beat's poll had to move, problems."""
    tasks: Counter[str] = Counter()
    rescued = 0
    problems: list[str] = []
    for name in children.procs:
        for line in children.log(name).splitlines():
            if match := TASK_DONE.search(line):
                tasks[match.group(1)] += 1
            if match := POLL_MOVED.search(line):
                rescued += int(match.group(1))
            if PROBLEM.search(line):
                problems.append(f"{name}: {line.strip()}")
    return {
        "celery_tasks": dict(sorted(tasks.items())),
        "moved_by_poll": rescued,
        "log_problems": len(problems),
        "log_problem_lines": problems[:5],
    }


def run(
    ws: Workspace,
    *,
    path: str,
    rates: list[float],
    duration: float,
    producers: int,
    drain_timeout: float,
) -> dict:
    """Start a path, warm it up, measure each offered rate in turn, stop it."""
    ws.reset_log()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        children = Children(Path(tmp))
        try:
            how, members = start(children, path)
            wait_balanced(children, members)
            warm_up(ws, children, f"{path}-warm")
            rows = {}
            for rate in rates:
                ws.say(f"latency through {path} at {rate:g} events/s ...")
                rows[f"{rate:g}"] = measure(
                    ws,
                    children,
                    f"{path}-{rate:g}",
                    rate=rate,
                    duration=duration,
                    producers=producers,
                    drain_timeout=drain_timeout,
                )
            children.check()
        finally:
            children.stop()
        findings = log_findings(children)
    ws.reset_log()
    return {"how": how, "readers_per_role": members, "rates": rows, **findings}
