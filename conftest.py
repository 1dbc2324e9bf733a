"""Fixtures shared by every app's tests. They use the real PostgreSQL and Redis.

The outbox's test support (``outbox.testing``) is a pytest plugin: every test gets
Redis keys of its own, and ``wait_for``, ``process_env`` and the ``outbox_*``
fixtures come from there. The Celery worker fixture is the shop's own.
"""

import pytest

pytest.register_assert_rewrite("outbox.testing")

from outbox import streams  # noqa: E402
from outbox.testing import process_env, wait_for  # noqa: E402

pytest_plugins = ["outbox.testing"]

__all__ = ["process_env", "wait_for"]


@pytest.fixture
def redis_client():
    return streams.get_redis()


class Worker:
    """A real ``celery -A shop worker`` (with embedded beat) in a child process."""

    def __init__(self, settings, tmp_path, name: str, *, beat: bool = True, **extra: str) -> None:
        import subprocess
        import sys

        self.log = tmp_path / f"{name}.log"
        self.queue = f"{settings.OUTBOX_STREAM_PREFIX}-q"
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            "--loglevel=INFO",
            "--concurrency=2",
            "--pool=prefork",
            f"--hostname={name}@%h",
            "-Q",
            self.queue,
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            args += ["-B", "--schedule", str(tmp_path / f"{name}-beat")]
        env = process_env(settings, CELERY_TASK_DEFAULT_QUEUE=self.queue, **extra)
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: "ready." in self.log.read_text() or self.proc.poll() is not None,
            timeout=60,
            message=f"celery worker {name} to start",
        )
        if self.proc.poll() is not None:
            pytest.fail(f"celery worker {name} exited:\n{self.log.read_text()[-3000:]}")

    def reader_pids(self) -> list[int]:
        """The pool processes that started readers, in the order they did."""
        import re

        return [
            int(pid)
            for pid in re.findall(r"outbox readers started in process (\d+)", self.log.read_text())
        ]

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM the worker, as a supervisor stops it (a warm shutdown); returns its exit code."""
        import signal

        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crash would."""
        import os
        import signal

        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    stop = kill


@pytest.fixture
def celery_worker(settings, tmp_path):
    """Start real Celery workers (with the relay and consumer readers) for end-to-end tests."""
    workers: list[Worker] = []

    def start(name: str = "w1", **kwargs) -> Worker:
        worker = Worker(settings, tmp_path, name, **kwargs)
        workers.append(worker)
        return worker

    from shop.celery import app

    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = f"{settings.OUTBOX_STREAM_PREFIX}-q"
    yield start
    app.conf.task_default_queue = default_queue
    for worker in workers:
        worker.stop()
