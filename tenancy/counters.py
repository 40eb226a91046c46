"""Counters and reads in the cache that take one round trip with Redis (its MGET, INCR and EXPIRE, pipelined)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache


def read_and_count(names: Sequence[str], counters: Sequence[tuple[str, int]]) -> tuple[dict[str, Any], dict[str, int]]:
    """The cached values of ``names`` (those present), and the value of each counter in ``counters`` (its name and
    timeout, as for :func:`count_hit`) after adding one to it: with Redis in one round trip (MGET, then INCR and
    EXPIRE per counter, pipelined)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache) or not (names or counters):
        found = cache.get_many(list(names)) if names else {}
        return found, {name: _count_locally(name, timeout) for name, timeout in counters}
    keys = [backend.make_and_validate_key(name) for name in names]
    counted = [backend.make_and_validate_key(name) for name, _ in counters]
    pipeline = backend._cache.get_client((keys or counted)[0], write=True).pipeline(transaction=False)
    if keys:
        pipeline.mget(keys)
    for key, (_, timeout) in zip(counted, counters, strict=True):
        pipeline.incr(key)
        pipeline.expire(key, timeout)
    results = pipeline.execute()
    found = {}
    if keys:
        loads = backend._cache._serializer.loads  # type: ignore[attr-defined]
        found = {name: loads(raw) for name, raw in zip(names, results.pop(0), strict=True) if raw is not None}
    return found, {name: int(results[2 * n]) for n, (name, _) in enumerate(counters)}


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
