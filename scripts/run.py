"""Run the whole shop on one machine: web, Celery worker (the relay and consumers) and beat.

Creates the database schema, static files and demo data first. Redis is started
when none answers and ``redis-server`` is installed. A process that exits is
restarted (the output says so); Ctrl-C stops everything. ``--dev`` serves the
web with Django's development server (auto-reload) instead of gunicorn.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

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
    env.setdefault("DEMO_CREDENTIALS_FILE", str(ROOT / ".demo-users.json"))
    # The run's own scraper token (printed) unless one is given: it also tells us when the
    # start-up's events have all been handled.
    generated_token = not env.get("METRICS_TOKEN")
    if generated_token:
        env["METRICS_TOKEN"] = secrets.token_urlsafe(18)
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
    # Once everything answers, say where to go and how to log in: the last lines of start-up.
    threading.Thread(
        target=announce,
        args=(host, Path(env["DEMO_CREDENTIALS_FILE"]), supervisor, env["METRICS_TOKEN"]),
        kwargs={"show_token": generated_token},
        daemon=True,
    ).start()
    supervisor.run()


def _ready(host: str) -> bool:
    try:
        with urlopen(f"http://{host}/health/ready", timeout=2) as response:
            return response.status == 200
    except (HTTPError, URLError, OSError):  # 503 is an HTTPError: not ready yet
        return False


def _backlog(host: str, token: str) -> float | None:
    """Events not yet relayed, read or acknowledged, from /metrics; None if it does not answer."""
    request = Request(f"http://{host}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urlopen(request, timeout=5) as response:  # noqa: S310 - our own web
            text = response.read().decode()
    except (HTTPError, URLError, OSError):
        return None
    names = ("outbox_group_lag{", "outbox_group_pending{", "outbox_unpublished_events ")
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(names)
    )


def announce(
    host: str,
    credentials: Path,
    supervisor: Supervisor,
    token: str,
    *,
    show_token: bool,
    timeout_s: float = 90,
) -> None:
    """Print the shop's addresses and the demo users' passwords once it is ready and idle."""
    deadline = time.monotonic() + timeout_s
    while not _ready(host) and time.monotonic() < deadline:
        if supervisor.stopping.wait(1.0):
            return
    # Then until the seed's events are handled (twice nothing left), so these lines come last.
    idle = 0
    while idle < 2 and time.monotonic() < deadline:
        idle = idle + 1 if _backlog(host, token) == 0 else 0
        if supervisor.stopping.wait(1.0):
            return
    state = "ready" if _ready(host) else f"not ready after {timeout_s:.0f} s (see /health/ready)"
    base = f"http://{host}"
    scraper = f" (Authorization: Bearer {token})" if show_token else ""
    lines = [
        "",
        f"shop {state}: {base}/  (Ctrl-C stops)",
        f"  API docs        {base}/api/docs/   (log in: {base}/api-auth/login/)",
        f"  admin           {base}/admin/",
        f"  operator's page {base}/admin/outbox/outboxevent/operator/",
        f"  health          {base}/health/ready   metrics: {base}/metrics{scraper}",
    ]
    try:
        kept = json.loads(credentials.read_text())
    except (OSError, ValueError):
        kept = {}
    for role, label in (("admin", "staff user"), ("customer", "customer")):
        if role in kept:
            user = kept[role]
            lines.append(f"  {label:<15} {user['username']} / {user['password']}")
    if kept:
        lines.append(
            f"  (kept in {credentials.name}, which git ignores; "
            "`.venv/bin/python manage.py seed_demo --reset-passwords` sets new ones)"
        )
    else:
        lines.append(
            "  demo passwords: as given in the environment, or reset them with "
            "`DEBUG=true .venv/bin/python manage.py seed_demo --reset-passwords`"
        )
    lines += [
        "  try it          DEBUG=true .venv/bin/python manage.py demo",
        "",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
