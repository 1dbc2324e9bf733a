import socket
import subprocess
import sys

from django.conf import settings as django_settings

from conftest import process_env


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_demo_exits_with_one_readable_line_when_the_shop_does_not_answer(settings):
    url = f"http://127.0.0.1:{closed_port()}"

    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "demo",
            "--url",
            url,
            "--username",
            "x",
            "--password",
            "y",
            # a password that starts with "-" is a value, not an option
            "--admin-password",
            "-starts-with-a-dash",
        ],
        cwd=django_settings.BASE_DIR,
        env=process_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"CommandError: the shop does not answer at {url} (")
    assert "refused" in lines[0].lower()
