"""Helpers shared by the test packages."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from tests.factories import PASSWORD


def race(work: Callable[[], Any], workers: int = 2) -> list[Any]:
    """Run ``work`` in ``workers`` threads released together; return each outcome (an exception counts as one).
    Each thread has its own database connection, closed when it is done: use with ``transaction=True`` tests."""
    barrier = threading.Barrier(workers, timeout=30)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait()
            outcome = work()
        except Exception as exc:
            outcome = exc
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def admin_client(user: Any, code: str = "abcd1234") -> Client:
    """A client signed in to the staff admin as ``user``, past the one-time-password step (a static backup code)."""
    device = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
    StaticToken.objects.create(device=device, token=code)
    client = Client()
    client.post(
        "/admin/login/?next=/admin/",
        {"username": user.email, "password": PASSWORD, "otp_device": device.persistent_id, "otp_token": code},
    )
    return client


def local_redis_url() -> str | None:
    """A Redis database for tests that need the real cache (db 14 on localhost), or None when no Redis answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return "redis://127.0.0.1:6379/14"
    except OSError:
        return None
