"""The Redis broker transport publishes through one client per channel, and builds a new one when kombu replaces the
channel's connection pool; Celery uses it for redis:// brokers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import uuid4

import pytest
from kombu import Connection
from kombu.transport import redis as kombu_redis

from msp import broker
from tests.helpers import local_redis_url

ROOT = Path(__file__).resolve().parents[2]
needs_redis = pytest.mark.skipif(local_redis_url() is None, reason="needs Redis on localhost:6379")


def setting(expression: str, **environment: str) -> str:
    """``expression`` printed by a fresh interpreter whose settings load with ``environment`` added."""
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    result = subprocess.run(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "msp.settings", **environment},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def built() -> Any:
    """The clients kombu's channel builds, in order: True for the consumer's, False for commands'."""
    made: list[bool] = []
    original = kombu_redis.Channel._create_client  # type: ignore[attr-defined]

    def counting(self: Any, asynchronous: bool = False) -> Any:
        made.append(asynchronous)
        return original(self, asynchronous)

    with mock.patch.object(kombu_redis.Channel, "_create_client", counting):
        yield made


@needs_redis
def test_messages_are_published_through_one_client(built: list[bool]) -> None:
    name = f"keel-test-{uuid4().hex}"
    with Connection(local_redis_url() or "", transport="msp.broker:Transport") as connection:
        assert isinstance(connection.default_channel, broker.Channel)
        queue = connection.SimpleQueue(name)
        try:
            for n in range(5):
                queue.put({"n": n})
            received = []
            for _ in range(5):
                message = queue.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
            assert sorted(received) == [0, 1, 2, 3, 4]
            assert built.count(False) == 1  # kombu's own channel builds one per publish
        finally:
            queue.clear()
            queue.close()


@needs_redis
def test_a_replaced_pool_gets_a_new_client(built: list[bool]) -> None:
    name = f"keel-test-{uuid4().hex}"
    with Connection(local_redis_url() or "", transport="msp.broker:Transport") as connection:
        channel: Any = connection.default_channel
        queue = connection.SimpleQueue(name)
        try:
            queue.put({"n": 1})
            first = channel._create_client()
            channel._disconnect_pools()  # as kombu does after a fork
            queue.put({"n": 2})
            second = channel._create_client()
            assert second is not first
            assert second.connection_pool is channel.pool
            assert queue.qsize() == 2
        finally:
            queue.clear()
            queue.close()


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://127.0.0.1:6379/0", "msp.broker:Transport"),
        ("rediss://cache.example:6380/0", "msp.broker:Transport"),
        ("sentinel://127.0.0.1:26379", "None"),
        ("amqp://guest@127.0.0.1//", "None"),
    ],
)
def test_celery_uses_the_transport_for_redis_brokers(url: str, transport: str) -> None:
    assert setting("getattr(settings, 'CELERY_BROKER_TRANSPORT', None)", CELERY_BROKER_URL=url) == transport


def test_the_filesystem_broker_polls_often(tmp_path: Path) -> None:
    """``make run``'s broker: kombu sleeps this long whenever it takes nothing, which includes every moment both
    worker processes are busy; at kombu's default of 1 s the worker ran about two jobs a second."""
    interval = setting("settings.CELERY_BROKER_TRANSPORT_OPTIONS['polling_interval']",
                       CELERY_BROKER_URL="filesystem://", KEEL_VAR_DIR=str(tmp_path))  # fmt: skip
    assert 0 < float(interval) <= 0.2
    assert (tmp_path / "broker" / "queue").is_dir()
