"""The PostgreSQL backend's health check: no query while a kept connection is idle and quiet; a connection the
server ended is found unusable and replaced before the request's first query."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper as DjangoWrapper

from tenancy.statements import statement_cursor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
]


@pytest.fixture(autouse=True)
def fresh_connection_afterwards():
    yield
    connection.close()  # the tests end or close the session; the next user connects anew


def other_connection():
    """A second connection to the test database, to end this one's session from outside."""
    return connections.create_connection("default")


def end_session(pid: int) -> None:
    killer = other_connection()
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        killer.close()


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_an_idle_quiet_connection_is_usable_without_a_query():
    backend_pid()  # connected and idle
    with mock.patch.object(DjangoWrapper, "is_usable", side_effect=AssertionError("SELECT 1 was sent")):
        assert connection.is_usable() is True


def test_a_connection_the_server_ended_is_unusable():
    pid = backend_pid()
    end_session(pid)
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:  # the server's goodbye reaches the socket
        time.sleep(0.01)
    assert connection.is_usable() is False


def test_the_health_check_replaces_an_ended_connection_before_the_first_query():
    pid = backend_pid()
    end_session(pid)
    time.sleep(0.2)
    connection.health_check_enabled = True  # type: ignore[attr-defined]
    connection.health_check_done = False  # type: ignore[attr-defined]
    connection.close_if_health_check_failed()
    assert backend_pid() != pid  # reconnected: the query did not fail


def test_inside_a_transaction_the_check_asks_the_server():
    backend_pid()
    connection.connection.execute("BEGIN")
    try:
        with mock.patch.object(DjangoWrapper, "is_usable", return_value=True) as asked:
            assert connection.is_usable() is True
        asked.assert_called_once()
    finally:
        connection.connection.execute("ROLLBACK")


def test_a_closed_connection_is_unusable():
    backend_pid()
    connection.connection.close()
    assert connection.is_usable() is False
    connection.connection = None
    assert connection.is_usable() is False


def prepared(marker: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{marker}%"])
        return int(cursor.fetchone()[0])


def test_a_statement_cursor_prepares_a_statement_it_runs_again():
    for n in range(4):
        with statement_cursor() as cursor:
            cursor.execute("SELECT %s::int + 1 AS keel_statement_probe", [n])
            assert cursor.fetchone() == (n + 1,)
    assert prepared("keel_statement_probe") == 1


def test_ordinary_cursors_never_prepare():
    for n in range(4):
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::int + 1 AS keel_client_probe", [n])
    assert prepared("keel_client_probe") == 0


def test_statement_cursor_queries_are_logged_with_their_parameters(django_assert_num_queries):
    with django_assert_num_queries(1) as captured, statement_cursor() as cursor:
        cursor.execute("SELECT %s::text AS keel_logged_probe", ["hello"])
    assert "'hello'" in captured.captured_queries[0]["sql"]
