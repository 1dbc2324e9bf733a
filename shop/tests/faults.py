"""Servers of a test's own (PostgreSQL, Redis) and the whole shop running against them.

A fault test restarts these, never the shared servers. Each one is removed at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import redis

from shop.processes import PY, Supervisor, commands, prepare_metrics_dir

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``condition`` until true; returns the seconds it took (fails the test on timeout)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def _answers(fn: Callable[[], object]) -> bool:
    try:
        fn()
    except (OSError, psycopg.Error, redis.RedisError):
        return False
    return True


class OwnRedis:
    """A redis-server on a port of its own that keeps nothing on disk."""

    def __init__(self, port: int, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.port, self.workdir = port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_until(lambda: _answers(client.ping), 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart_empty(self) -> None:
        self.stop()
        self.start()


class OwnPostgres:
    """A PostgreSQL cluster of its own (pg_createcluster) on a port of its own, trust auth."""

    def __init__(self, port: int) -> None:
        if shutil.which("pg_createcluster") is None or not Path("/etc/postgresql").is_dir():
            pytest.skip("pg_createcluster is not available")
        self.version = sorted(os.listdir("/etc/postgresql"))[-1]
        self.name = f"shoptest{port}"
        self.port = port
        subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], capture_output=True)
        subprocess.run(
            ["pg_createcluster", self.version, self.name, "-p", str(port), "--", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        self.start()

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, *args],
            check=True,
            capture_output=True,
        )

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> None:
        self._ctl("start")
        wait_until(
            lambda: _answers(lambda: psycopg.connect(self.url("postgres")).close()),
            30,
            "the test's PostgreSQL",
        )

    def stop_immediately(self) -> None:
        self._ctl("stop", "-m", "immediate")

    def remove(self) -> None:
        subprocess.run(["pg_dropcluster", "--stop", self.version, self.name], capture_output=True)


def create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SEED = """
from decimal import Decimal
from inventory import services
for n in range(4):
    services.product_create(sku=f"FAULT-{n}", name=f"Fault {n}", price=Decimal("5.00"), stock=100000)
"""


class Shop:
    """Web (gunicorn), worker and beat under the run command's supervisor, seeded and reachable."""

    def __init__(
        self,
        *,
        database_url: str,
        redis_url: str,
        port: int,
        logdir: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.database_url = database_url
        self.log = logdir / "shop.log"
        self.env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="shop.settings",
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            DEBUG="false",
            SECRET_KEY="fault-test-" + uuid.uuid4().hex,
            ALLOWED_HOSTS="127.0.0.1",
            HOST=f"127.0.0.1:{port}",
            WEB_CONCURRENCY="2",
            OUTBOX_PARTITIONS="4",
            EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
            # One client address places every order here: the limits would refuse most.
            RATELIMIT_ENABLED="false",
            # A provider call whose Celery message Redis lost waits for beat's resend:
            # sooner than the default 30 s, so that ten restarts fit in a test.
            PAYMENTS_RESEND_AFTER_S="3",
            PAYMENTS_POLL_INTERVAL_S="1",
            PROMETHEUS_MULTIPROC_DIR=str(logdir / "metrics"),
            METRICS_TOKEN="fault-test-metrics-token",
            PYTHONUNBUFFERED="1",
        )
        self.env.update(env or {})
        prepare_metrics_dir(self.env)
        for step in (["migrate", "--noinput", "-v0"], ["shell", "-c", SEED]):
            subprocess.run(
                [PY, "manage.py", *step],
                cwd=ROOT,
                env=self.env,
                check=True,
                capture_output=True,
                timeout=180,
            )
        out = self.log.open("w")
        self.supervisor = Supervisor(
            commands(self.env, schedule=str(logdir / "beat-schedule")),
            self.env,
            cwd=str(ROOT),
            out=out,
            say=lambda line: (out.write(line + "\n"), out.flush()),
        )
        self.supervisor.start()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        wait_until(lambda: _answers(lambda: self.get("/health/")), 60, "the web to answer")
        wait_until(
            lambda: (
                self.scalar("SELECT count(*) FROM orders_catalogueitem WHERE sku LIKE 'FAULT-%%'")
                == 4
            ),
            60,
            "orders to learn the catalogue",
        )
        self.token = self._customer()

    def _watch(self) -> None:
        while not self.supervisor.stopping.wait(0.5):
            self.supervisor.watch_once()

    def stop(self) -> None:
        self.supervisor.stop()

    def restarts(self) -> dict[str, int]:
        return {name: child.restarts for name, child in self.supervisor.children.items()}

    # --- HTTP ---

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Token {self.token}"
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        try:
            return response.status, json.loads(data) if data else {}
        except ValueError:
            return response.status, {}

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)

    def _customer(self) -> str:
        name = f"fault-{uuid.uuid4().hex[:8]}"
        password = "a-fault-test-pass-phrase"
        status, _ = self.request(
            "POST",
            "/api/customers/",
            {"username": name, "email": f"{name}@example.com", "password": password},
        )
        assert status == 201
        status, data = self.request(
            "POST", "/api/auth/token/", {"username": name, "password": password}
        )
        assert status == 200, data
        return data["token"]

    def place(self, n: int) -> int | None:
        """Place an order; its id when the API said 201, None when it refused or failed."""
        try:
            status, data = self.request(
                "POST", "/api/orders/", {"lines": [{"sku": f"FAULT-{n % 4}", "quantity": 1}]}
            )
        except OSError:
            return None
        return int(data["id"]) if status == 201 else None

    # --- the database, read directly ---

    def scalar(self, sql: str, params: tuple = ()) -> object:
        with psycopg.connect(self.database_url, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchone()[0]

    def pending_orders(self, ids: list[int]) -> int:
        return int(
            self.scalar(
                "SELECT count(*) FROM orders_order WHERE id = ANY(%s) AND status NOT IN "
                "('CONFIRMED', 'CANCELLED', 'SHIPPED')",
                (ids,),
            )
        )

    def audit(self) -> str:
        """What ``outbox_audit`` finds on the shop's database: "" when every group is clean."""
        run = subprocess.run(
            [PY, "manage.py", "outbox_audit", "--settle", "0"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return "" if run.returncode == 0 else (run.stdout + run.stderr).strip()


class Load:
    """Places orders from a thread, as a client would, until stopped; keeps what was accepted."""

    def __init__(self, shop: Shop, *, pace_s: float = 0.05) -> None:
        self.shop, self.pace_s = shop, pace_s
        self.accepted: list[int] = []
        self.refused = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        while not self.stopping.wait(self.pace_s):
            order_id = self.shop.place(n)
            n += 1
            if order_id is None:
                self.refused += 1
            else:
                self.accepted.append(order_id)

    def stop(self) -> list[int]:
        self.stopping.set()
        self.thread.join(timeout=30)
        return list(self.accepted)
