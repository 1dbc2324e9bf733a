"""Build the wheel, install it WITHOUT extras into a fresh virtualenv and run the shop from it.

What a deployment does, on a PostgreSQL database and Redis key prefix of the smoke's own:
build the wheel from the committed and untracked (not ignored) files, check that it ships
neither tests nor benchmarks, install it into an empty virtualenv, migrate, seed the demo
data, start the web (gunicorn), ``celery -A shop worker`` and ``celery -A shop beat`` from
that virtualenv, sign up and log in through the API, place one order and wait until it is
CONFIRMED. Then it stops everything and removes the database, its Redis keys and the
virtualenv. A runtime dependency missing from pyproject.toml makes one of those steps fail.

    python scripts/smoke_install.py --database-url postgres://postgres@localhost:5432/shop \\
        --redis-url redis://localhost:6379/14 [--port 17100]

The database is ``<name of --database-url>_smoke`` on the same server (dropped first if a
failed run left it). Prints one line per step; on failure the processes' last log lines,
then one line saying what failed, and exits 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
# Nothing of the test suite or the benchmark belongs in the wheel.
NOT_SHIPPED = re.compile(
    r"(^|/)(tests?|bench|benchmarks?)(/|$)|(^|/)(test_[^/]*|conftest|[^/]*_bench|bench_[^/]*)\.py$"
)
SKU = "KB-001"  # in seed_demo's catalogue, with stock
CONFIRM_TIMEOUT_S = 120.0
START_TIMEOUT_S = 90.0


class SmokeFailed(Exception):
    """One step failed; the message says which and why, in one line."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        required=True,
        help="a PostgreSQL URL; the smoke uses the database <its name>_smoke on that server",
    )
    parser.add_argument("--redis-url", required=True, help="Redis for the streams and Celery")
    parser.add_argument("--port", type=int, default=0, help="the web's port (0: a free one)")
    args = parser.parse_args()
    started = time.monotonic()
    smoke = Smoke(database_url=_smoke_database_url(args.database_url), redis_url=args.redis_url)
    try:
        smoke.run(port=args.port or _free_port())
    except SmokeFailed as exc:
        smoke.show_logs()
        print(f"smoke_install: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        smoke.clean_up()
    print(f"smoke_install: passed in {time.monotonic() - started:.0f} s", flush=True)
    return 0


class Smoke:
    def __init__(self, *, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.work = Path(tempfile.mkdtemp(prefix="shop-smoke-"))
        self.venv = self.work / "venv"
        self.prefix = f"smoke-{secrets.token_hex(5)}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.database_created = False
        self.failed = ""  # the log of the command that failed
        self.port = 0
        self.base_url = ""

    # --- the steps --------------------------------------------------------------------

    def run(self, *, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        wheel = self.step("build the wheel", self.build_wheel)
        self.step("check the wheel's files", lambda: self.check_wheel(wheel))
        self.step("install it without extras into a fresh virtualenv", lambda: self.install(wheel))
        self.step("create the database", self.create_database)
        self.step("migrate", lambda: self.admin("migrate", "--noinput"))
        self.step("seed the demo data", lambda: self.admin("seed_demo"))
        self.step(f"start web, worker and beat (web on {self.base_url})", self.start)
        self.step("the schema, the API docs and the admin answer", self.pages)
        token = self.step("sign up and log in through the API", self.sign_up_and_log_in)
        order_id = self.step("place an order", lambda: self.place_order(token))
        self.step(
            f"wait until order {order_id} is CONFIRMED", lambda: self.confirmed(token, order_id)
        )
        self.step("beat sends its tasks", self.beat_sends)
        self.step("stop web, worker and beat", self.stop)

    def step(self, title: str, action: Callable[[], Any]) -> Any:
        started = time.monotonic()
        print(f"smoke_install: {title} ...", end="", flush=True)
        try:
            result = action()
        except SmokeFailed as exc:
            print(" failed", flush=True)
            raise SmokeFailed(f"{title}: {exc}") from None
        except Exception as exc:  # a bug of the smoke itself: still one line
            print(" failed", flush=True)
            raise SmokeFailed(f"{title}: {type(exc).__name__}: {exc}") from exc
        print(f" ok ({time.monotonic() - started:.1f} s)", flush=True)
        return result

    def build_wheel(self) -> Path:
        # From a copy of what git tracks (plus new, not ignored files), as a fresh clone
        # would have it: no stale build/ directory or .venv can leak into the wheel.
        source = self.work / "src"
        for name in _source_files():
            if (ROOT / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, source / name)
        dist = self.work / "dist"
        self.run_logged(
            "build",
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--wheel-dir",
                str(dist),
                str(source),
            ],
            env=os.environ.copy(),
        )
        wheels = list(dist.glob("*.whl"))
        if len(wheels) != 1:
            raise SmokeFailed(f"expected one wheel in {dist}, found {len(wheels)}")
        return wheels[0]

    def check_wheel(self, wheel: Path) -> None:
        names = zipfile.ZipFile(wheel).namelist()
        unwanted = sorted(name for name in names if NOT_SHIPPED.search(name))
        if unwanted:
            shown = ", ".join(unwanted[:5]) + (" ..." if len(unwanted) > 5 else "")
            raise SmokeFailed(f"the wheel ships {len(unwanted)} test or benchmark file(s): {shown}")
        for needed in ("shop/settings.py", "shop/wsgi.py", "orders/migrations/0001_initial.py"):
            if needed not in names:
                raise SmokeFailed(f"the wheel lacks {needed}")

    def install(self, wheel: Path) -> None:
        # A virtualenv without pip: the project brings nothing in but its own requirements.
        # pip runs from this interpreter into it, with pip's cache and configuration.
        self.run_logged("install", [sys.executable, "-m", "venv", "--without-pip", str(self.venv)])
        self.run_logged(
            "install",
            [
                sys.executable,
                "-m",
                "pip",
                "--python",
                str(self.bin("python")),
                "install",
                str(wheel),
            ],
            env=os.environ.copy(),
        )
        located = self.run_logged(
            "install", [str(self.bin("python")), "-c", "import shop; print(shop.__file__)"]
        )
        if not located.strip().startswith(str(self.venv)):
            raise SmokeFailed(f"shop is imported from {located.strip()}, not from the virtualenv")

    def create_database(self) -> None:
        name = _database_name(self.database_url)
        self.venv_python(
            "create",
            f"""
import psycopg
with psycopg.connect({_server_url(self.database_url)!r}, autocommit=True) as conn:
    conn.execute('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.execute('CREATE DATABASE "{name}"')
""",
        )
        self.database_created = True

    def admin(self, *command: str) -> None:
        self.run_logged(command[0], [str(self.bin("django-admin")), *command], env=self.env())

    def start(self) -> None:
        commands = {
            "web": [
                str(self.bin("gunicorn")),
                "shop.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--access-logfile",
                "-",
            ],
            "worker": [
                str(self.bin("celery")),
                "-A",
                "shop",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                f"--hostname={self.prefix}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            "beat": [
                str(self.bin("celery")),
                "-A",
                "shop",
                "beat",
                "--loglevel=INFO",
                "--schedule",
                str(self.work / "beat-schedule"),
            ],
        }
        for name, command in commands.items():
            if not Path(command[0]).exists():
                raise SmokeFailed(
                    f"{name}: {Path(command[0]).name} is not installed in the virtualenv"
                )
            self.logs[name] = self.work / f"{name}.log"
            env = self.env()
            if name == "beat":
                # beat's "Sending due task" lines are DEBUG (quiet at rest): show them here
                env["LOG_LEVELS"] = "celery.beat=DEBUG"
            self.procs[name] = subprocess.Popen(
                command,
                cwd=self.work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self.logs[name].open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_for("the web to answer /health/", lambda: self.http("GET", "/health/")[0] == 200)
        self.wait_for("the worker to be ready", lambda: "ready." in self.log("worker"))
        self.wait_for("beat to start", lambda: "beat: Starting" in self.log("beat"))

    def pages(self) -> None:
        # Rendered from templates and package data inside the wheel: a file left out fails here.
        for path in ("/api/schema/", "/api/docs/", "/admin/login/"):
            status, body = self.http("GET", path, accept="*/*")
            if status != 200:
                raise SmokeFailed(f"GET {path} answered {status}: {str(body)[:200]}")

    def sign_up_and_log_in(self) -> str:
        username, password = f"smoke{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        status, body = self.http(
            "POST",
            "/api/customers/",
            {"username": username, "email": f"{username}@example.com", "password": password},
        )
        if status != 201:
            raise SmokeFailed(f"POST /api/customers/ answered {status}: {body}")
        status, body = self.http(
            "POST", "/api/auth/token/", {"username": username, "password": password}
        )
        if status != 200 or not body.get("token"):
            raise SmokeFailed(f"POST /api/auth/token/ answered {status}: {body}")
        return body["token"]

    def place_order(self, token: str) -> int:
        # The orders app's catalogue is a replica of inventory's products, filled from their
        # events by the worker's readers: just after the start it may not know the sku yet.
        placed: list[int] = []

        def attempt() -> bool:
            status, body = self.http(
                "POST",
                "/api/orders/",
                {"lines": [{"sku": SKU, "quantity": 1}]},
                token=token,
                headers={"Idempotency-Key": self.prefix},
            )
            if status == 201:
                placed.append(int(body["id"]))
                return True
            if status == 400 and f"unknown sku: {SKU}" in str(body.get("lines")):
                return False
            raise SmokeFailed(f"POST /api/orders/ answered {status}: {body}")

        self.wait_for(f"the orders catalogue to know {SKU}", attempt)
        return placed[0]

    def confirmed(self, token: str, order_id: int) -> None:
        def status() -> bool:
            code, body = self.http("GET", f"/api/orders/{order_id}/", token=token)
            if code != 200:
                raise SmokeFailed(f"GET /api/orders/{order_id}/ answered {code}: {body}")
            if body["status"] == "CANCELLED":
                raise SmokeFailed(f"the order was cancelled: {body['cancel_reason']}")
            return body["status"] == "CONFIRMED"

        self.wait_for("the order to be CONFIRMED", status, timeout=CONFIRM_TIMEOUT_S)

    def beat_sends(self) -> None:
        self.wait_for(
            "beat to send outbox-poll",
            lambda: "Sending due task outbox-poll" in self.log("beat"),
        )

    def stop(self) -> None:
        for name in ("web", "beat", "worker"):
            proc = self.procs.pop(name)
            _signal(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
                proc.wait(timeout=10)
                self.failed = name
                raise SmokeFailed(f"{name} did not stop within 30 s of SIGTERM") from None

    # --- cleaning up ------------------------------------------------------------------

    def clean_up(self) -> None:
        for proc in self.procs.values():
            _signal(proc, signal.SIGKILL)
            proc.wait(timeout=10)
        self.procs.clear()
        if self.bin("python").exists():
            self.remove_redis_keys()
            if self.database_created:
                self.drop_database()
        shutil.rmtree(self.work, ignore_errors=True)

    def remove_redis_keys(self) -> None:
        try:
            self.venv_python(
                "clean",
                f"""
import redis
client = redis.Redis.from_url({self.redis_url!r})
for key in client.scan_iter(match="*{self.prefix}*", count=500):
    client.delete(key)
for key in client.scan_iter(match="_kombu.binding.*", count=500):
    if client.type(key) == b"set":
        for member in client.smembers(key):
            if b"{self.prefix}" in member:
                client.srem(key, member)
""",
            )
        except SmokeFailed as exc:
            print(f"smoke_install: could not remove its Redis keys: {exc}", file=sys.stderr)

    def drop_database(self) -> None:
        name = _database_name(self.database_url)
        try:
            self.venv_python(
                "clean",
                f"""
import psycopg
with psycopg.connect({_server_url(self.database_url)!r}, autocommit=True) as conn:
    conn.execute('DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
""",
            )
        except SmokeFailed as exc:
            print(f"smoke_install: could not drop database {name}: {exc}", file=sys.stderr)

    def show_logs(self) -> None:
        """The failed command's output and the processes' logs, the last lines of each."""
        for name, path in self.logs.items():
            if path.exists() and (name in self.procs or name == self.failed):
                lines = path.read_text(errors="replace").splitlines()[-60:]
                print(f"--- {name} (last {len(lines)} lines of {path.name}) ---", file=sys.stderr)
                print("\n".join(lines), file=sys.stderr)

    # --- helpers ----------------------------------------------------------------------

    def bin(self, name: str) -> Path:
        return self.venv / "bin" / name

    def env(self) -> dict[str, str]:
        """Only what a deployment would set: nothing of the caller's project settings."""
        env = {
            key: value
            for key, value in os.environ.items()
            if key in ("LANG", "LC_ALL", "TZ", "TMPDIR", "USER")
        }
        env.update(
            HOME=str(self.work),  # gunicorn's control socket and the like stay in here
            PATH=f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE="shop.settings",
            SECRET_KEY=secrets.token_urlsafe(50),
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            OUTBOX_STREAM_PREFIX=self.prefix,
            CELERY_TASK_DEFAULT_QUEUE=f"{self.prefix}:celery",
            OUTBOX_POLL_INTERVAL_S="1.0",
            WEB_CONCURRENCY="2",
            DEMO_ADMIN_PASSWORD=secrets.token_urlsafe(16),
            DEMO_CUSTOMER_PASSWORD=secrets.token_urlsafe(16),
        )
        return env

    def run_logged(self, log: str, command: list[str], *, env: dict[str, str] | None = None) -> str:
        if not Path(command[0]).exists():
            raise SmokeFailed(f"{Path(command[0]).name} is not installed in the virtualenv")
        path = self.work / f"{log}.log"
        self.logs[log] = path
        result = subprocess.run(
            command,
            cwd=self.work,
            env=env if env is not None else self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        with path.open("a") as out:
            out.write(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            self.failed = log
            last = _last_error_line(result.stderr or result.stdout)
            raise SmokeFailed(f"{Path(command[0]).name} exited {result.returncode}: {last}")
        return result.stdout

    def venv_python(self, log: str, code: str) -> str:
        return self.run_logged(log, [str(self.bin("python")), "-c", code])

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def wait_for(
        self, what: str, condition: Callable[[], bool], *, timeout: float = START_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    last = _last_error_line(self.log(name))
                    raise SmokeFailed(f"{name} exited with {proc.returncode}: {last}")
            if condition():
                return
            if time.monotonic() > deadline:
                raise SmokeFailed(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)

    def http(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        sent = {"Content-Type": "application/json", "Accept": accept}
        if token:
            sent["Authorization"] = f"Token {token}"
        sent.update(headers or {})
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request(
                method, path, body=None if body is None else json.dumps(body), headers=sent
            )
            response = connection.getresponse()
            return response.status, _json(response.read())
        except (OSError, http.client.HTTPException):
            return 0, None  # not listening yet, or a worker restarted mid-request
        finally:
            connection.close()


def _source_files() -> list[str]:
    """The project's files as a clone has them: git's, or the tree less what git ignores."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        return [name for name in listed.stdout.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        ignored = {".git", ".venv", "build", "dist", "__pycache__", ".ruff_cache", "staticfiles"}
        return [
            str(path.relative_to(ROOT))
            for path in ROOT.rglob("*")
            if path.is_file()
            and not ignored.intersection(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.parts)
        ]


def _smoke_database_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(f"smoke_install: --database-url must be a PostgreSQL URL, not {url!r}")
    name = parsed.path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        sys.exit(f"smoke_install: database name {name!r} must be letters, digits and _")
    return urlunparse(parsed._replace(path=f"/{name}_smoke"))


def _database_name(url: str) -> str:
    return urlparse(url).path.lstrip("/")


def _server_url(url: str) -> str:
    """The same server, its maintenance database ``postgres``."""
    parsed = urlparse(url)
    return urlunparse(parsed._replace(scheme="postgresql", path="/postgres"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")[:200]


def _last_error_line(text: str) -> str:
    """The line of a log most likely to say what went wrong.

    A missing module first (what a missing runtime dependency looks like, also when
    another error followed it), else the last exception line, else the last line.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if re.match(r"^(ModuleNotFoundError|ImportError)\b", line):
            return line
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line) or line.startswith("ERROR"):
            return line
    return lines[-1] if lines else "(no output)"


if __name__ == "__main__":
    sys.exit(main())
