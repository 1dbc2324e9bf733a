"""Rate limits hold across web processes: two gunicorn servers count against one limit."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

import pytest
from django.core.cache import cache

from conftest import process_env, wait_for
from shop import services

pytestmark = pytest.mark.django_db(transaction=True)

PORTS = range(17000, 17100)
LOGIN_USER_LIMIT = 5
SIGNUP_ADDRESS_LIMIT = 6


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail("no free port in 17000-17099")


def _post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urlopen(request, timeout=30) as response:
            return response.status, {"headers": dict(response.headers)}
    except HTTPError as exc:
        return exc.code, {"headers": dict(exc.headers), **json.loads(exc.read() or b"{}")}


def _answers(url: str) -> bool:
    try:
        with urlopen(url, timeout=2) as response:
            return response.status == 200
    except (URLError, OSError):
        return False


@pytest.fixture
def two_servers(settings, tmp_path):
    """Two gunicorn servers on the test database, limits on, one cache key prefix shared."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    env = process_env(
        settings,
        RATELIMIT_ENABLED="true",
        CACHE_KEY_PREFIX=prefix,
        # Day-long windows: one ending during the test (which would start the
        # counts again) is a 1-in-40,000 chance.
        RATELIMIT_LOGIN_USER=f"{LOGIN_USER_LIMIT}/d",
        RATELIMIT_LOGIN_ADDRESS="1000/d",
        RATELIMIT_SIGNUP_ADDRESS=f"{SIGNUP_ADDRESS_LIMIT}/d",
    )
    servers: list[tuple[subprocess.Popen, str]] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"gunicorn-{name}.log"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "shop.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "1",
                    "--threads",
                    "4",
                ],
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            url = f"http://127.0.0.1:{port}"
            servers.append((proc, url))
            wait_for(
                lambda url=url, proc=proc: _answers(f"{url}/health/") or proc.poll() is not None,
                timeout=60,
                message=f"gunicorn {name} to answer",
            )
            if proc.poll() is not None:
                pytest.fail(f"gunicorn {name} exited:\n{log.read_text()[-3000:]}")
        yield [url for _, url in servers]
    finally:
        for proc, _ in servers:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc, _ in servers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)


def test_failed_logins_are_counted_once_across_two_servers_hit_at_once(two_servers):
    # given
    services.customer_sign_up(username="alice", email="a@example.com", password="a-pass-phrase-1")
    attempts = 16

    # when: concurrent wrong passwords, spread over both servers
    def attempt(n: int) -> tuple[int, dict]:
        return _post(
            f"{two_servers[n % 2]}/api/auth/token/", {"username": "alice", "password": "wrong"}
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(attempts)))

    # then: exactly the limit got through, whichever server answered
    statuses = sorted(status for status, _ in results)
    assert statuses == [400] * LOGIN_USER_LIMIT + [429] * (attempts - LOGIN_USER_LIMIT)
    throttled = [body for status, body in results if status == 429]
    assert all(int(body["headers"]["Retry-After"]) > 0 for body in throttled)
    assert all(body["code"] == "throttled" for body in throttled)
    # and the right password is refused too now, on either server
    for url in two_servers:
        status, _ = _post(
            f"{url}/api/auth/token/", {"username": "alice", "password": "a-pass-phrase-1"}
        )
        assert status == 429


def test_a_forged_x_forwarded_for_does_not_dodge_the_address_limit_on_either_server(two_servers):
    # given
    attempts = 12

    # when: sign-ups from one address, each claiming another through the header
    def attempt(n: int) -> int:
        status, _ = _post(
            f"{two_servers[n % 2]}/api/customers/",
            {"username": f"user{n}", "email": f"user{n}@example.com", "password": "a-pass-1-x"},
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
        )
        return status

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(attempts)))

    # then
    assert statuses == [201] * SIGNUP_ADDRESS_LIMIT + [429] * (attempts - SIGNUP_ADDRESS_LIMIT)
