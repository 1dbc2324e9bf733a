"""The saga benchmark: the whole shop as the README runs it, orders placed through the API.

    python -m bench.saga [--json bench/saga.json]      (make bench-saga)

It creates a database of its own (``BENCH_SAGA_DATABASE_URL``, default
``postgres://postgres@localhost:5432/shop_bench_saga``; the name must contain
"bench"; dropped and created again on each run) and starts a Redis server of its
own (``--redis-port``, default 6391), so that Redis's CPU is the system's alone.
Then it starts web (gunicorn), worker and beat with ``shop.processes`` at their
defaults (``DEBUG`` off), seeds a catalogue and customers through the API, and
measures:

- confirmed orders per second with ``--clients`` clients placing orders back to
  back (closed loop), and the rate the API accepted them at;
- POST -> CONFIRMED latency at each ``--rates`` offered (open loop: order n is due
  at start + n / rate, whatever happened before it), and the POST's own latency;
- CPU per confirmed order in the closed loop and at each offered rate, by process
  kind: web, worker, beat, the PostgreSQL backends of its database (those that
  ended meanwhile included), and Redis:
  from the loop's start until every handler of every group has applied what its
  orders caused, divided by those orders. At an offered rate it includes what
  the idle shop costs meanwhile (the readers' ticks, the beat) and is steadier
  than the closed loop's, which moves with contention.

An order's CONFIRMED time is when its ``orders.OrderConfirmed`` event was
written (its ``occurred_at``, in the confirming transaction). Each line is one
product, quantity 1, paid with ``tok_visa``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop.processes import PY, Supervisor, commands, prepare_metrics_dir  # noqa: E402

SKUS = [f"BENCH-{n:03d}" for n in range(20)]
PASSWORD = "bench-pass-phrase-" + uuid.uuid4().hex[:8]


def say(text: str) -> None:
    print(text, flush=True)


# --- measuring ---------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary_ms(ordered_s: list[float]) -> dict[str, float]:
    ordered = sorted(ordered_s)
    return {
        name: round(percentile(ordered, q) * 1000, 1)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }


def _stat(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_groups_cpu(groups: dict[str, int], backends: set[int]) -> dict[str, float]:
    """CPU seconds so far of each named process group (its leader's pid).

    ``backends`` (PostgreSQL's, which ``BackendCpu`` counts) are left out.
    """
    by_group = {pgid: name for name, pgid in groups.items()}
    cpu = dict.fromkeys(groups, 0.0)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in backends:
            continue  # counted by BackendCpu
        stat = _stat(pid)
        if stat is None:
            continue
        pgid, seconds = stat
        if pgid in by_group:
            cpu[by_group[pgid]] += seconds
        elif pid in groups.values():
            cpu[next(n for n, p in groups.items() if p == pid)] += seconds
    return cpu


class BackendCpu:
    """CPU seconds of a database's PostgreSQL backends, those that have exited included.

    A backend's CPU leaves ``/proc`` with it (the web's connections end after
    ``CONN_MAX_AGE``): each backend keeps the last reading taken of it, four
    times a second, so an exited one is missing at most its last quarter second.
    """

    def __init__(self, db_name: str) -> None:
        self.db_name = db_name
        self.seen: dict[int, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(0.25):
            self.sample()

    def sample(self) -> set[int]:
        """Read every live backend of the database; returns their pids."""
        live = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            # "postgres: [<cluster>:] <user> <database> <client> <activity>", the title
            # a backend gives itself (update_process_title, on by default)
            words = title.replace(b"\0", b" ").split()
            if words[:1] == [b"postgres:"] and self.db_name.encode() in words[2:4]:
                stat = _stat(int(entry))
                if stat is not None:
                    live[int(entry)] = stat[1]
        with self.lock:
            self.seen.update(live)
        return set(live)

    def total(self) -> tuple[float, set[int]]:
        """CPU seconds of every backend seen so far, and the pids of the live ones."""
        live = self.sample()
        with self.lock:
            return sum(self.seen.values()), live

    def stop(self) -> None:
        self.stopping.set()


def cpu_per_order(before: dict[str, float], after: dict[str, float], orders: int) -> dict:
    """CPU milliseconds per order by process kind between two ``process_groups_cpu`` readings."""
    cpu_ms = {
        kind: round((after[kind] - before.get(kind, 0.0)) * 1000 / max(orders, 1), 2)
        for kind in after
    }
    cpu_ms["total"] = round(sum(cpu_ms.values()), 2)
    return cpu_ms


# --- the system under test ------------------------------------------------------------------


class System:
    """Database, Redis and the shop's processes, started as ``make run`` starts them."""

    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        self.args = args
        self.logs = logs
        self.db_url = os.environ.get(
            "BENCH_SAGA_DATABASE_URL", "postgres://postgres@localhost:5432/shop_bench_saga"
        )
        self.db_name = urlparse(self.db_url).path.lstrip("/")
        if "bench" not in self.db_name:
            sys.exit(f"refusing database {self.db_name!r}: its name must contain 'bench'")
        self.port = args.port
        self.redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
        self.redis: subprocess.Popen | None = None
        self.supervisor: Supervisor | None = None
        self.backends: BackendCpu | None = None
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="shop.settings",
            DATABASE_URL=self.db_url,
            REDIS_URL=self.redis_url,
            DEBUG="false",
            SECRET_KEY="bench-" + uuid.uuid4().hex,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            HOST=f"127.0.0.1:{self.port}",
            PYTHONUNBUFFERED="1",
            # No mail server here: the console backend would write every email to the log.
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            # One client address places every order here: the limits would refuse most.
            RATELIMIT_ENABLED="false",
            PROMETHEUS_MULTIPROC_DIR=str(logs / "metrics"),
        )
        for name in ("WEB_CONCURRENCY", "WORKER_CONCURRENCY"):
            value = getattr(args, name.lower())
            if value:
                self.env[name] = str(value)

    def __enter__(self) -> System:
        prepare_metrics_dir(self.env)
        self._database()
        self._redis()
        self._manage("migrate", "--noinput", "-v0")
        self._manage("collectstatic", "--noinput", "-v0")
        out = (self.logs / "shop.log").open("w")
        self.supervisor = Supervisor(
            commands(self.env, schedule=str(self.logs / "beat-schedule")),
            self.env,
            cwd=str(ROOT),
            out=out,
            say=lambda line: out.write(line + "\n"),
        )
        self.supervisor.start()
        self._wait_for_web()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.backends is not None:
            self.backends.stop()
        if self.supervisor is not None:
            self.supervisor.stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(timeout=10)

    def _database(self) -> None:
        import psycopg

        parsed = urlparse(self.db_url)
        admin = psycopg.connect(
            host=parsed.hostname or "localhost",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password or None,
            dbname="postgres",
            autocommit=True,
        )
        with admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{self.db_name}"')

    def _redis(self) -> None:
        if shutil.which("redis-server") is None:
            sys.exit("redis-server is not installed: the benchmark runs a Redis of its own")
        self.redis = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.args.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.logs),
            ],
            stdout=(self.logs / "redis.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        import redis

        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(self.redis_url).ping():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline or self.redis.poll() is not None:
                sys.exit(f"redis-server did not start on port {self.args.redis_port}")
            time.sleep(0.1)

    def _manage(self, *args: str) -> None:
        subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True)

    def _wait_for_web(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _ = request(self.port, "GET", "/health/")
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit("the web did not answer within 60 s (see shop.log)")

    def pids(self) -> dict[str, int]:
        assert self.supervisor is not None
        return {name: child.proc.pid for name, child in self.supervisor.children.items()}

    def redis_pid(self) -> int:
        assert self.redis is not None
        return self.redis.pid

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each process kind (``process_groups_cpu``, ``BackendCpu``)."""
        groups = {**self.pids(), "redis": self.redis_pid()}
        if self.backends is None:
            self.backends = BackendCpu(self.db_name)
        backends, live = self.backends.total()
        cpu = process_groups_cpu(groups, live)
        cpu["postgresql"] = backends
        return cpu


def request(
    port: int, method: str, path: str, body: dict | None = None, token: str | None = None
) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    try:
        conn.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = conn.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"raw": data[:200].decode(errors="replace")}
        return response.status, parsed
    finally:
        conn.close()


# --- the database, read from this process ---------------------------------------------------


@contextmanager
def django_for(system: System) -> Iterator[None]:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="shop.settings",
        DATABASE_URL=system.db_url,
        REDIS_URL=system.redis_url,
        DEBUG="false",
        SECRET_KEY=system.env["SECRET_KEY"],
    )
    import django

    django.setup()
    yield


def seed(system: System, customers: int) -> list[str]:
    """The catalogue (through inventory's service) and customers (through the API); their tokens."""
    from decimal import Decimal

    from inventory import services as inventory
    from orders.models import CatalogueItem

    for sku in SKUS:
        inventory.product_create(sku=sku, name=f"Bench {sku}", price=Decimal("9.90"), stock=900_000)
    wait(
        lambda: CatalogueItem.objects.filter(sku__in=SKUS).count() == len(SKUS),
        60,
        "orders to learn the catalogue",
    )
    tokens = []
    for n in range(customers):
        username = f"bench{n}-{uuid.uuid4().hex[:6]}"
        body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
        status, data = request(system.port, "POST", "/api/customers/", body)
        if status != 201:
            sys.exit(f"sign-up answered {status}: {data}")
        status, data = request(
            system.port, "POST", "/api/auth/token/", {"username": username, "password": PASSWORD}
        )
        if status != 200:
            sys.exit(f"login answered {status}: {data}")
        tokens.append(data["token"])
    return tokens


def wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def confirmed_at(order_ids: list[int]) -> dict[int, float]:
    """When each order's OrderConfirmed was written (epoch seconds), for those confirmed."""
    from outbox.models import OutboxEvent

    rows = OutboxEvent.objects.filter(
        event_type="orders.OrderConfirmed",
        aggregate_type="order",
        aggregate_id__in=[str(i) for i in order_ids],
    ).values_list("aggregate_id", "occurred_at")
    return {int(order_id): when.timestamp() for order_id, when in rows}


def confirmed_between(start: float, end: float) -> int:
    from outbox.models import OutboxEvent

    return OutboxEvent.objects.filter(
        event_type="orders.OrderConfirmed",
        occurred_at__gte=datetime.fromtimestamp(start).astimezone(),
        occurred_at__lt=datetime.fromtimestamp(end).astimezone(),
    ).count()


def wait_quiet(timeout: float = 120.0) -> None:
    """Until nothing is unpublished and no group applied anything for a second."""
    from outbox.models import InboxEntry, OutboxEvent

    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        applied = InboxEntry.objects.count()
        if applied == last and not OutboxEvent.objects.filter(published_at=None).exists():
            return
        last = applied
        time.sleep(1.0)
    sys.exit("the system did not settle")


def unfinished() -> int:
    from orders.models import Order

    return Order.objects.filter(status="PENDING").count()


# --- load -------------------------------------------------------------------------------------


class Placer:
    """Places one order through the API and notes when and how it went."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.port = port
        self.tokens = tokens
        self.lock = threading.Lock()
        self.sent: dict[int, float] = {}  # order id -> when the POST was sent
        self.post_s: list[float] = []
        self.errors: dict[str, int] = {}

    def place(self, n: int) -> None:
        body = {"lines": [{"sku": SKUS[n % len(SKUS)], "quantity": 1}], "payment_token": "tok_visa"}
        sent = time.time()
        try:
            status, data = request(
                self.port, "POST", "/api/orders/", body, self.tokens[n % len(self.tokens)]
            )
        except OSError as exc:
            status, data = 0, {"error": type(exc).__name__}
        took = time.time() - sent
        with self.lock:
            if status == 201:
                self.sent[int(data["id"])] = sent
                self.post_s.append(took)
            else:
                key = f"{status} {str(data)[:80]}"
                self.errors[key] = self.errors.get(key, 0) + 1


def closed_loop(placer: Placer, clients: int, seconds: float) -> tuple[float, float]:
    """``clients`` threads placing orders back to back for ``seconds``; returns (start, end)."""
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()

    def client() -> None:
        while time.monotonic() < stop_at:
            with lock:
                n = next(counter)
            placer.place(n)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return start, time.time()


def open_loop(placer: Placer, rate: float, seconds: float, senders: int = 64) -> float:
    """Order n is due at start + n / rate; returns how late the latest one was sent (s)."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    next_n = iter(range(total))
    lock = threading.Lock()
    late = [0.0]

    def sender() -> None:
        while True:
            with lock:
                n = next(next_n, None)
            if n is None:
                return
            due = start + n / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                with lock:
                    late[0] = max(late[0], -delay)
            placer.place(n)

    threads = [threading.Thread(target=sender) for _ in range(min(senders, total))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return late[0]


# --- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict:
    logs = Path(tempfile.mkdtemp(prefix="bench-saga-"))
    report: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "params": {
            "clients": args.clients,
            "closed_seconds": args.duration,
            "rates": args.rates,
            "open_seconds": args.rate_duration,
        },
        "logs": str(logs),
    }
    with System(args, logs) as system, django_for(system):
        say(f"system up on port {system.port}; logs in {logs}")
        tokens = seed(system, args.clients)
        report["params"]["processes"] = {
            name: " ".join(argv[2:] if argv[:2] == [PY, "-m"] else argv[1:])
            for name, argv in commands(system.env).items()
        }
        # warm-up: every process has served and every reader holds its partitions
        warm = Placer(system.port, tokens)
        closed_loop(warm, min(args.clients, 4), 3)
        wait(lambda: unfinished() == 0, 60, "the warm-up orders to finish")
        wait_quiet()

        say(f"closed loop: {args.clients} clients for {args.duration:.0f} s")
        placer = Placer(system.port, tokens)
        cpu_before = system.cpu()
        start, end = closed_loop(placer, args.clients, args.duration)
        # Orders confirmed in the window's steady part (the first second ramps up).
        window = (start + 1.0, end)
        confirmed = confirmed_between(*window)
        per_s = confirmed / (window[1] - window[0])
        wait(lambda: unfinished() == 0, 180, "the closed loop's backlog to drain")
        wait_quiet()
        # All the work the window's orders caused is done: every handler of every group.
        done = confirmed_at(list(placer.sent))
        cpu_ms = cpu_per_order(cpu_before, system.cpu(), len(done))
        report["closed_loop"] = {
            "confirmed_per_s": round(per_s, 1),
            "accepted_per_s": round(len(placer.sent) / (end - start), 1),
            "placed": len(placer.sent),
            "confirmed_in_the_end": len(done),
            "errors": placer.errors,
            "post_ms": summary_ms(sorted(placer.post_s)),
            "cpu_ms_per_confirmed_order": cpu_ms,
        }
        say(f"  {per_s:.1f} confirmed/s, cpu {cpu_ms}")

        report["open_loop"] = {}
        for rate in args.rates:  # each starts quiet: the loop before ended with wait_quiet()
            say(f"open loop: {rate:g} orders/s for {args.rate_duration:.0f} s")
            placer = Placer(system.port, tokens)
            cpu_before = system.cpu()
            late = open_loop(placer, rate, args.rate_duration)
            wait(lambda: unfinished() == 0, 120, f"the {rate:g}/s orders to finish")
            wait_quiet()
            done = confirmed_at(list(placer.sent))
            cpu_ms = cpu_per_order(cpu_before, system.cpu(), len(done))
            latencies = sorted(done[i] - sent for i, sent in placer.sent.items() if i in done)
            report["open_loop"][f"{rate:g}"] = {
                "offered_per_s": rate,
                "placed": len(placer.sent),
                "confirmed": len(latencies),
                "errors": placer.errors,
                "latest_send_late_ms": round(late * 1000, 1),
                "post_to_confirmed_ms": summary_ms(latencies),
                "post_ms": summary_ms(sorted(placer.post_s)),
                # Idle work (the readers' ticks, the beat) included: what an order costs at this rate.
                "cpu_ms_per_confirmed_order": cpu_ms,
            }
            row = report["open_loop"][f"{rate:g}"]["post_to_confirmed_ms"]
            say(f"  POST -> CONFIRMED p50 {row['p50']} p95 {row['p95']} p99 {row['p99']} ms")
    report["machine"]["load_average_at_end"] = os.getloadavg()
    shutil.rmtree(logs, ignore_errors=True) if not args.keep_logs else None
    return report


def print_table(report: dict) -> None:
    closed = report["closed_loop"]
    say("")
    say(
        f"saga benchmark ({report['machine']['cpus']} CPUs, load at start "
        f"{', '.join(f'{x:.2f}' for x in report['machine']['load_average_at_start'])})"
    )
    say("-" * 78)
    say(
        f"{'closed loop, ' + str(report['params']['clients']) + ' clients':<44} "
        f"{closed['confirmed_per_s']:>8} confirmed/s  (accepted {closed['accepted_per_s']}/s)"
    )
    post = closed["post_ms"]
    say(f"{'  POST latency':<44} p50 {post['p50']} p99 {post['p99']} ms")
    cpu = closed["cpu_ms_per_confirmed_order"]
    say(f"{'  CPU per confirmed order (ms)':<44} " + ", ".join(f"{k} {v}" for k, v in cpu.items()))
    if closed["errors"]:
        say(f"  errors: {closed['errors']}")
    for rate, row in report["open_loop"].items():
        lat = row["post_to_confirmed_ms"]
        say(
            f"{'open loop ' + rate + ' orders/s: POST -> CONFIRMED':<44} "
            f"p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} ms  ({row['confirmed']}/{row['placed']})"
        )
        say(f"{'  POST latency':<44} p50 {row['post_ms']['p50']} p99 {row['post_ms']['p99']} ms")
        cpu = row["cpu_ms_per_confirmed_order"]
        say(
            f"{'  CPU per confirmed order (ms)':<44} "
            + ", ".join(f"{k} {v}" for k, v in cpu.items())
        )
        if row["errors"]:
            say(f"  errors: {row['errors']}")
    say("-" * 78)


def main() -> None:
    parser = argparse.ArgumentParser(description="The saga benchmark (see the module docstring).")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=20.0, help="closed loop, seconds")
    parser.add_argument("--rates", type=float, nargs="+", default=[20.0, 50.0])
    parser.add_argument("--rate-duration", type=float, default=15.0, help="each open loop, s")
    parser.add_argument("--port", type=int, default=8391, help="the web's port")
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--web-concurrency", type=int, help="default: as the run command")
    parser.add_argument("--worker-concurrency", type=int, help="default: as the run command")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    report = run(args)
    print_table(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        say(f"wrote {args.json}")


if __name__ == "__main__":
    main()
