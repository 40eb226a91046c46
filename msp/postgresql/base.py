"""Django's PostgreSQL backend with a cheaper connection health check and prepared hot statements.

**Health check.** With ``CONN_HEALTH_CHECKS`` Django checks a kept connection before its first query in each
request, so that a connection the server dropped (a restart, a failover, an idle timeout) is replaced instead of
failing the request. Django checks by running ``SELECT 1``: a round trip to the server on every request that touches
the database, which on busy endpoints whose whole work is one statement doubles the statements sent. Here the check
first asks the operating system whether the server has sent anything on the idle connection. A server that ends a
session (a shutdown or restart, ``pg_terminate_backend``, an idle timeout) sends its reason and closes the socket, so
the socket turns readable; an idle session in good order has nothing to read. Only when something is waiting, or
the connection is not idle, does the check fall back to ``SELECT 1``. What this cannot see is a server that vanished
without closing its sockets (a host that lost power): the request's first query then fails with the outage
middleware's 503, and the connection is replaced for the next request.

**Prepared statements.** Django binds parameters on the client, so PostgreSQL parses and plans every statement
anew; for the hand-written statements of the busiest endpoints (a Twilio callback, a short-link click, the
dashboard) planning costs several times what running them does. :meth:`DatabaseWrapper.statement_cursor` gives a
cursor that binds at the server, and psycopg prepares a statement on the connection once it has run
``prepare_threshold`` times (``DATABASE_PREPARE_THRESHOLD``, 2 by default; ``off`` turns preparing off, for a
pooler that cannot keep prepared statements, such as PgBouncer before 1.21 in transaction mode). Every other query
keeps Django's client-side binding, which psycopg never prepares.
"""

from __future__ import annotations

import select
from typing import Any

import psycopg
from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str | None:  # type: ignore[override]
        """The query with its parameters in place, for the query log, from a cursor of either kind."""
        if isinstance(cursor, psycopg.ClientCursor):
            return super().last_executed_query(cursor, sql, params)
        try:
            return str(self.compose_sql(sql, params))
        except psycopg.errors.DataError:
            return None


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    _bind_at_server = False

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return bool(super().is_usable())
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
            waiting = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return bool(super().is_usable())
        return True if not waiting else bool(super().is_usable())

    def statement_cursor(self) -> Any:
        """A Django cursor (query logging, wrappers and error translation as usual) that binds its parameters at
        the server, so a statement it runs again and again is prepared once per connection."""
        self._bind_at_server = True
        try:
            return self.cursor()
        finally:
            self._bind_at_server = False

    def create_cursor(self, name: str | None = None) -> Any:
        if name is not None or not self._bind_at_server:
            return super().create_cursor(name)
        factory = self.connection.cursor_factory
        self.connection.cursor_factory = base.ServerBindingCursor
        try:
            return super().create_cursor()
        finally:
            self.connection.cursor_factory = factory
