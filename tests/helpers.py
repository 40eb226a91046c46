"""Helpers shared by the test packages."""

from __future__ import annotations

import re
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.urls import Resolver404, resolve
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


def walk(
    client: Client, start: str, *, links: re.Pattern[str], not_pages: tuple[str, ...], per_view: int = 2
) -> tuple[int, list[tuple[int, str, str]]]:
    """Open ``start`` and every page of the site linked from the pages opened (the paths ``links`` finds in HTML
    pages, except those starting with ``not_pages``), at most ``per_view`` pages per view: enough to meet each page
    (a list, one of its objects) without walking every row. How many were opened, and those that refused or failed:
    (status, page, the page that linked to it)."""
    seen: set[str] = set()
    opened_per_view: dict[str, int] = {}
    queue: deque[tuple[str, str]] = deque([(start, "")])
    opened, refused = 0, []
    while queue:
        url, linked_from = queue.popleft()
        if url in seen or url.startswith(not_pages):
            continue
        seen.add(url)
        try:
            view = resolve(url.partition("?")[0]).view_name
        except Resolver404:
            refused.append((404, url, linked_from))
            continue
        opened_per_view[view] = opened_per_view.get(view, 0) + 1
        if opened_per_view[view] > per_view:
            continue
        response = client.get(url)
        opened += 1
        if response.status_code >= 400:
            refused.append((response.status_code, url, linked_from))
        elif response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            found = links.findall(response.content.decode())
            queue.extend((link.replace("&amp;", "&"), url) for link in found if link not in seen)
    return opened, refused
