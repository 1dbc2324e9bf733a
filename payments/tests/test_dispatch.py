"""The in-process dispatch of a payment's phase: a dead connection is replaced, not fatal."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from payments import dispatch

pytestmark = pytest.mark.django_db(transaction=True)


def _backend() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _terminate(pid: int) -> None:
    """End a backend from another session, waiting (at most 5 s) until it is gone."""
    ended: list[bool] = []

    def terminate() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
                ended.append(cursor.fetchone()[0])
        finally:
            connection.close()

    thread = threading.Thread(target=terminate)
    thread.start()
    thread.join(timeout=10)
    assert ended == [True]


def test_a_run_on_a_connection_that_died_while_idle_goes_again_on_a_new_one():
    # given this thread's connection, killed by the server while idle
    before = _backend()
    _terminate(before)
    seen: list[int] = []
    # when a run is dispatched on it
    dispatch._call(lambda **attempt: seen.append(_backend()), {"payment_id": 1})
    # then it ran once, on a new session
    assert len(seen) == 1 and seen[0] != before


def test_a_run_on_a_live_connection_makes_no_health_check():
    _backend()
    with CaptureQueriesContext(connection) as queries:
        dispatch._call(lambda **attempt: _backend(), {"payment_id": 1})
    assert [q["sql"] for q in queries] == ["SELECT pg_backend_pid()"]


def test_a_failure_of_the_run_itself_is_not_run_again():
    calls: list[int] = []

    def run(**attempt) -> None:
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no_such_table"):
        dispatch._call(run, {"payment_id": 1})
    assert calls == [1]
