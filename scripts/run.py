"""Run the whole shop on one machine: web, Celery worker (the relay and consumers) and beat.

Creates the database schema, static files and demo data first. Redis is started
when none answers and ``redis-server`` is installed. A process that exits is
restarted (the output says so); Ctrl-C stops everything. ``--dev`` serves the
web with Django's development server (auto-reload) instead of gunicorn.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shop.processes import PY, Supervisor, commands, prepare_metrics_dir  # noqa: E402


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true", help="Django's development server")
    args = parser.parse_args()
    os.chdir(ROOT)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    env.setdefault("DEBUG", "true")
    # Every process's metrics add up at /metrics (emptied at each start).
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(ROOT / ".metrics"))
    redis_url = env.setdefault("REDIS_URL", "redis://localhost:6379/0")
    ensure_redis(redis_url)
    prepare_metrics_dir(env)
    manage = [PY, "manage.py"]
    for step in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run([*manage, *step], env=env, check=True)
    host = env.get("HOST", "127.0.0.1:8000")
    supervisor = Supervisor(
        commands(env, dev=args.dev, schedule=str(ROOT / ".celerybeat-schedule")), env, cwd=str(ROOT)
    )
    supervisor.start()
    print(f"\nshop running: http://{host}/api/docs/  admin: http://{host}/admin/  (Ctrl-C stops)\n")
    supervisor.run()


if __name__ == "__main__":
    main()
