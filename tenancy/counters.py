"""Counters and reads in the cache that take one round trip with Redis (its MGET, INCR and EXPIRE, pipelined)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def read_and_count(names: Sequence[str], counters: Sequence[tuple[str, int]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The cached values of ``names`` (those present), and the value of each counter in ``counters`` (its name and
    timeout, as for :func:`count_hit`) after adding one to it: with Redis in one round trip (MGET, then INCR and
    EXPIRE per counter, sent together)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache) or not (names or counters):
        found = cache.get_many(list(names)) if names else {}
        return found, {name: _count_locally(name, timeout) for name, timeout in counters}
    keys = [backend.make_and_validate_key(name) for name in names]
    counted = [backend.make_and_validate_key(name) for name, _ in counters]
    commands: list[tuple[Any, ...]] = [("MGET", *keys)] if keys else []
    for key, (_, timeout) in zip(counted, counters, strict=True):
        commands += [("INCR", key), ("EXPIRE", key, timeout)]
    replies = _round_trip(backend._cache.get_client((keys or counted)[0], write=True), commands)
    found = {}
    if keys:
        loads = backend._cache._serializer.loads  # type: ignore[attr-defined]
        found = {name: loads(raw) for name, raw in zip(names, replies.pop(0), strict=True) if raw is not None}
    return found, {name: int(replies[2 * n]) for n, (name, _) in enumerate(counters)}


def _round_trip(client: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` together on one of the client's pooled connections and read their replies: what a
    redis-py pipeline does, without its bookkeeping, which costs more than the round trip itself. A connection
    error is tried once more (a pooled connection Redis closed, as redis-py's client retries it)."""
    try:
        return _send(client.connection_pool, commands)
    except (RedisConnectionError, RedisTimeoutError):
        return _send(client.connection_pool, commands)


def _send(pool: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    connection = pool.get_connection()
    try:
        connection.send_packed_command(connection.pack_commands(commands))
        return [connection.read_response() for _ in commands]
    except BaseException:
        connection.disconnect()  # so that no reply is ever left unread on a pooled connection
        raise
    finally:
        pool.release(connection)


def count_hit(key: str, timeout: int) -> int:
    """Add one to the counter ``key`` (created at 1, kept ``timeout`` seconds) and return its new value, atomically:
    with Redis one round trip (INCR and EXPIRE in a pipeline), with another cache ``add`` or ``incr``. The key names
    one window, so renewing its expiry on each hit never keeps a count past its window's end plus ``timeout``."""
    return read_and_count((), [(key, timeout)])[1][key]


def _count_locally(key: str, timeout: int) -> int:
    if cache.add(key, 1, timeout):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout)
        return 1
