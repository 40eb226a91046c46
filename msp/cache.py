"""Django's Redis cache, with one client object per connection pool instead of one per operation, and no memcached
key checks.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every cache call, and building one fills
its table of response callbacks anew (hundreds of entries): about a tenth of a millisecond each time, several times
per request. A ``redis.Redis`` is safe to share between threads (each command borrows a connection from the pool),
so each pool's client is built once and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    # Set by Django's client (its type stubs do not list them).
    _servers: list[str]
    _pools: dict[int, Any]
    _pool_class: Any
    _pool_options: dict[str, Any]
    _client: Any
    _get_connection_pool_index: Callable[[bool], int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def validate_key(self, key: str) -> None:
        """Redis takes any key. Django checks every key against memcached's limits (250 characters, no spaces or
        control characters) to warn about keys another backend could not store; the tests' local-memory cache still
        does, so such a key is found there, not on every request in production."""
