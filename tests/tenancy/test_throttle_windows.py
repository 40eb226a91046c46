"""The per-key and public rates count requests in fixed windows on the UTC clock, one increment per request."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.connection
import redis.exceptions
import time_machine
from django.core.cache import cache, caches
from django.core.cache.backends.base import CacheKeyWarning
from django.test import override_settings
from rest_framework.test import APIClient

from tenancy.api_auth import ApiKeyRateThrottle, PublicRateThrottle
from tenancy.counters import count_hit, read_and_count
from tests.helpers import local_redis_url

START = datetime(2026, 3, 2, 10, 0, 50, tzinfo=UTC)  # 10 seconds before a minute ends
ME = "/api/auth/me"


def test_a_keys_rate_starts_again_with_the_next_clock_minute(acme, api, api_key_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    client = api(api_key_for(organization=acme)[1])
    with time_machine.travel(START, tick=False) as traveller:
        assert [client.get(ME).status_code for _ in range(3)] == [200, 200, 429]
        refused = client.get(ME)
        assert refused.status_code == 429
        assert refused["Retry-After"] == "10"  # the minute ends at 10:01:00
        traveller.move_to(START + timedelta(seconds=10))
        assert [client.get(ME).status_code for _ in range(3)] == [200, 200, 429]


def test_refused_requests_are_not_counted(acme, api, api_key_for, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    key, raw = api_key_for(organization=acme)
    client = api(raw)
    with time_machine.travel(START, tick=False):
        assert [client.get(ME).status_code for _ in range(5)] == [200, 200, 429, 429, 429]
        throttle = ApiKeyRateThrottle()
        counter, _ = throttle.window_counter(throttle.key_cache_key(key), START.timestamp())
        assert cache.get(counter) == 2


def test_the_public_rate_counts_per_address_per_window(db, monkeypatch):
    monkeypatch.setattr(PublicRateThrottle, "THROTTLE_RATES", {"public": "1/min"})
    with time_machine.travel(START, tick=False) as traveller:
        first, other = APIClient(), APIClient(REMOTE_ADDR="198.51.100.7")
        assert [first.get("/api/qualify/status/x").status_code for _ in range(2)] == [404, 429]
        assert other.get("/api/qualify/status/x").status_code == 404
        traveller.move_to(START + timedelta(seconds=15))
        assert first.get("/api/qualify/status/x").status_code == 404


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_count_hit_on_redis_counts_atomically_and_expires():
    with override_settings(CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}):
        cache.delete("count-hit-test")
        assert [count_hit("count-hit-test", 30) for _ in range(3)] == [1, 2, 3]
        assert cache.get("count-hit-test") == 3
        backend: Any = caches["default"]
        ttl = backend._cache.get_client("count-hit-test").ttl(backend.make_and_validate_key("count-hit-test"))
        assert 0 < ttl <= 30
        cache.delete("count-hit-test")


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_the_redis_cache_keeps_one_client_per_pool():
    with override_settings(CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}):
        backend: Any = caches["default"]
        assert backend._cache.get_client("a") is backend._cache.get_client("b", write=True)
        cache.set("client-test", {"n": 1}, 5)
        assert cache.get("client-test") == {"n": 1}
        cache.delete("client-test")


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_read_and_count_on_redis_reads_values_and_counts():
    with override_settings(CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}):
        cache.delete_many(["rc-count", "rc-other", "rc-value", "rc-missing"])
        cache.set("rc-value", {"n": 1}, 30)
        found, counts = read_and_count(["rc-value", "rc-missing"], [("rc-count", 30), ("rc-other", 60)])
        assert found == {"rc-value": {"n": 1}}
        assert counts == {"rc-count": 1, "rc-other": 1}
        assert read_and_count([], [("rc-count", 30)]) == ({}, {"rc-count": 2})
        backend: Any = caches["default"]
        ttl = backend._cache.get_client("rc-other").ttl(backend.make_and_validate_key("rc-other"))
        assert 30 < ttl <= 60
        cache.delete_many(["rc-count", "rc-other", "rc-value"])


def test_read_and_count_without_redis(db):
    cache.set("rc-value", 7, 30)
    assert read_and_count(["rc-value", "rc-missing"], [("rc-count", 30)]) == ({"rc-value": 7}, {"rc-count": 1})
    assert read_and_count(["rc-value"], []) == ({"rc-value": 7}, {})


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_read_and_count_tries_a_dropped_connection_once_more(monkeypatch):
    with override_settings(CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}):
        cache.delete("rc-retry")
        original = redis.connection.AbstractConnection.send_packed_command
        failures = iter([redis.exceptions.ConnectionError("Connection closed by server.")])

        def flaky(self: Any, command: Any, check_health: bool = True) -> Any:
            failure = next(failures, None)
            if failure is not None:
                raise failure
            return original(self, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", flaky)
        assert read_and_count([], [("rc-retry", 30)]) == ({}, {"rc-retry": 1})
        cache.delete("rc-retry")


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_an_error_reply_leaves_no_reply_unread_for_the_next_caller():
    with override_settings(CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}):
        cache.set("rc-text", "not a number", 30)
        cache.set("rc-value", 5, 30)
        with pytest.raises(redis.exceptions.ResponseError):
            read_and_count(["rc-value"], [("rc-text", 30), ("rc-after", 30)])
        assert read_and_count(["rc-value"], []) == ({"rc-value": 5}, {})
        assert cache.get("rc-value") == 5
        cache.delete_many(["rc-text", "rc-value", "rc-after"])


@pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")
def test_the_redis_cache_takes_any_key_and_the_test_cache_still_warns():
    long_key = "key with spaces " + "x" * 300
    redis_cache = {"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": local_redis_url()}}
    with override_settings(CACHES=redis_cache), warnings.catch_warnings():
        warnings.simplefilter("error", CacheKeyWarning)
        cache.set(long_key, 1, 5)
        assert cache.get(long_key) == 1
        cache.delete(long_key)
    with pytest.warns(CacheKeyWarning):
        cache.set(long_key, 1, 5)
