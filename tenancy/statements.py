"""Cursors for the hand-written statements of the busiest endpoints."""

from __future__ import annotations

from typing import Any

from django.db import connections


def statement_cursor(using: str = "default") -> Any:
    """A cursor for a fixed statement that runs many times a second. On PostgreSQL it binds its parameters at the
    server, so the connection prepares the statement once and PostgreSQL stops planning it on every run
    (``msp.postgresql``); elsewhere it is the ordinary cursor. Parameters must have types PostgreSQL can infer from
    where they stand (a column they are compared with or assigned to), or be cast."""
    connection = connections[using]
    bound_at_server = getattr(connection, "statement_cursor", None)
    return bound_at_server() if bound_at_server is not None else connection.cursor()


# Joined to a statement that runs on its own (autocommit, so it is its own transaction), this makes that transaction
# commit without waiting for the disk, and no other: ``set_config`` with ``is_local`` is the function form of
# SET LOCAL, so there is no BEGIN, SET or COMMIT round trip. Only for writes a crash of PostgreSQL itself may lose.
ASYNCHRONOUS_COMMIT = "SELECT set_config('synchronous_commit', 'off', true)"
