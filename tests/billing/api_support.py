"""What the contract and invoice API tests share (their fixtures are in this package's conftest): the frozen clock,
the wrong values every body is tried with, sending raw JSON, and query counting."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

SYDNEY = ZoneInfo("Australia/Sydney")
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=SYDNEY)  # a Tuesday morning in Acme's zone
ALL_SCOPES = ("read", "write", "billing:read", "billing:write")

WRONG_VALUES: list[Any] = [
    "text",
    "",
    -1,
    0,
    1.5,
    10**40,
    True,
    None,
    [],
    ["x"],
    [{}],
    {},
    {"a": 1},
    "NaN",
    "-Infinity",
    "1e999",
    "9" * 40,
    "2026-02-30",
    "nul\x00byte",
]


def session(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def send(client: Any, method: str, path: str, body: Any, **headers: Any) -> Any:
    cache.clear()  # the key's rate limit: hundreds of requests here
    return client.generic(method.upper(), path, json.dumps(body), content_type="application/json", **headers)


def count_queries(client: Any, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return len(captured)
