from typing import Any

import pytest
from django.test import Client

from msp import health


@pytest.mark.django_db
def test_health_reports_every_check_ok(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_health_names_the_failing_check(client: Client, monkeypatch: Any) -> None:
    def broken() -> None:
        raise ConnectionError("broker unreachable")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json() == {"status": "fail", "checks": {"database": "ok", "cache": "ok", "broker": "fail"}}
