"""The settings refuse an unsafe production and take a safe one from the environment."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = ROOT / "production.env.example"
SETTINGS_ENV_NAMES = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
}


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Python with the project's real settings and exactly ``env`` for the settings' variables."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV_NAMES}
    clean.update(DJANGO_SETTINGS_MODULE="shop.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run_python(
        "import sys; from django.core.management import execute_from_command_line; "
        f"execute_from_command_line(['manage.py', *{list(args)!r}])",
        **env,
    )


def production_env() -> dict[str, str]:
    values = {}
    for line in PRODUCTION_ENV.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


LOAD_SETTINGS = "from django.conf import settings; print(settings.SECRET_KEY[:3])"


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DEBUG": "false"},
        {"DEBUG": "false", "SECRET_KEY": ""},
        {"DEBUG": "false", "SECRET_KEY": "insecure-development-key-change-me"},
    ],
    ids=["nothing-set", "debug-off", "empty-key", "the-public-default"],
)
def test_without_debug_the_settings_refuse_a_missing_or_public_secret_key_in_one_line(env):
    # when
    result = run_python(LOAD_SETTINGS, **env)

    # then
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0] and "set SECRET_KEY" in lines[0]


def test_with_debug_on_the_development_key_still_works_for_make_run():
    result = run_python(LOAD_SETTINGS, DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ins"


def test_a_real_secret_key_starts_without_debug():
    result = run_python(LOAD_SETTINGS, DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50))

    assert result.returncode == 0, result.stderr


def test_the_documented_production_configuration_passes_the_deploy_check():
    # when
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **production_env(),
        SECRET_KEY=secrets.token_urlsafe(50),
    )

    # then
    assert result.returncode == 0, result.stderr


def test_the_deploy_check_fails_without_the_https_settings():
    # when: only what the settings cannot start without
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
    )

    # then: the check is not a formality
    assert result.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert warning in result.stderr


def test_https_settings_come_from_the_environment():
    # when
    result = run_python(
        "import json; from django.conf import settings as s; print(json.dumps(["
        "s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.CSRF_TRUSTED_ORIGINS, "
        "s.TRUSTED_PROXIES]))",
        **production_env(),
        SECRET_KEY=secrets.token_urlsafe(50),
    )

    # then
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        ["HTTP_X_FORWARDED_PROTO", "https"],
        True,
        31536000,
        True,
        True,
        ["https://shop.example.com"],
        ["10.0.0.0/8"],
    ]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO"),
        ("TRUSTED_PROXIES", "10.0.0.1,proxy.internal"),
        ("RATELIMIT_LOGIN_USER", "ten a minute"),
    ],
)
def test_a_malformed_security_setting_stops_start_up_with_one_line_naming_it(name, value):
    result = run_python(LOAD_SETTINGS, DEBUG="true", **{name: value})

    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert name in result.stderr


@pytest.mark.django_db
@override_settings(
    SECURE_SSL_REDIRECT=True, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_behind_the_proxy_https_is_recognised_and_plain_http_redirected():
    # when
    plain = Client().get("/api/products/")
    proxied = Client().get("/api/products/", HTTP_X_FORWARDED_PROTO="https")
    health = Client().get("/health/")

    # then
    assert plain.status_code == 301
    assert plain["Location"].startswith("https://")
    assert proxied.status_code == 200
    assert health.status_code == 200
