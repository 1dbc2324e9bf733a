"""Run the whole shop on one machine: web, Celery worker (relay and consumers) and beat.

Creates the database schema and demo data first. Redis is started when none
answers and ``redis-server`` is installed. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def ensure_redis(url: str) -> None:
    if redis_answers(url):
        return
    parsed = urlparse(url)
    local = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    if not local or shutil.which("redis-server") is None:
        sys.exit(
            f"Redis does not answer at {url}: install Redis 7 (apt-get install redis-server) "
            "and start it, or set REDIS_URL to a running one."
        )
    port = str(parsed.port or 6379)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--port",
            port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp",
        ],
        check=True,
    )
    deadline = time.monotonic() + 15
    while not redis_answers(url):
        if time.monotonic() > deadline:
            sys.exit(f"redis-server was started but does not answer at {url}")
        time.sleep(0.2)
    print(f"started redis-server on port {port}")


def main() -> None:
    os.chdir(ROOT)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    env.setdefault("DEBUG", "true")
    redis_url = env.setdefault("REDIS_URL", "redis://localhost:6379/0")
    ensure_redis(redis_url)
    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True)
    subprocess.run([*manage, "seed_demo"], env=env, check=True)
    sqlite = not env.get("DATABASE_URL", "").startswith(("postgres", "pgsql"))
    # SQLite has no advisory locks: one worker process keeps relay and consumers in order.
    concurrency = "1" if sqlite else env.get("WORKER_CONCURRENCY", "4")
    host = env.get("HOST", "127.0.0.1:8000")
    procs = {
        "web": [*manage, "runserver", host, "--noreload"],
        "worker": [
            PY,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
        ],
        "beat": [
            PY,
            "-m",
            "celery",
            "-A",
            "shop",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(ROOT / ".celerybeat-schedule"),
        ],
    }
    running = {name: subprocess.Popen(cmd, env=env) for name, cmd in procs.items()}
    print(f"\nshop running: http://{host}/api/docs/  admin: http://{host}/admin/  (Ctrl-C stops)\n")

    def stop(*_args) -> None:
        for proc in running.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in running.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while True:
        for name, proc in running.items():
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; stopping the rest")
                stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
