"""NinjaOne fixtures: the webhook secret, the sandbox provider, Acme and Globex linked to NinjaOne organizations 7 and
9, and condition activities as NinjaOne sends them."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from integrations.ninjaone import sandbox
from tenancy.models import Organization

SECRET = "test-ninjaone-webhook-secret"
PATH = "/webhooks/ninjaone/"
ACME_NINJA = "7"
GLOBEX_NINJA = "9"
# 2 March 2026, 09:00 UTC: 8 pm in Sydney (AEDT).
TRIGGERED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

_ids = itertools.count(880001)


@pytest.fixture(autouse=True)
def _ninjaone(settings: Any) -> Iterator[None]:
    settings.NINJAONE_WEBHOOK_SECRET = SECRET
    settings.NINJAONE_PROVIDER = "sandbox"
    settings.NINJAONE_BASE_URL = "https://app.ninjarmm.com"
    sandbox.DEVICES.clear()
    yield
    sandbox.DEVICES.clear()


def link(organization: Organization, ninjaone_id: str) -> Organization:
    organization.ninjaone_org_id = ninjaone_id
    organization.save(update_fields=["ninjaone_org_id"])
    return organization


@pytest.fixture
def acme_linked(acme: Organization) -> Organization:
    return link(acme, ACME_NINJA)


@pytest.fixture
def globex_linked(globex: Organization) -> Organization:
    return link(globex, GLOBEX_NINJA)


def activity(
    *,
    status: str = "TRIGGERED",
    series: str = "series-disk-1042",
    org: str | int = 7,
    device: int = 1042,
    device_name: str = "ACME-SRV01",
    condition: str = "cond-disk",
    condition_name: str = "Disk free space",
    severity: str | None = "MAJOR",
    message: str = "C: has 4% free space (2.1 GB of 60 GB)",
    at: datetime = TRIGGERED_AT,
    activity_id: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A condition activity as NinjaOne's webhook delivers it (with ``expand=device``)."""
    body: dict[str, Any] = {
        "id": activity_id if activity_id is not None else next(_ids),
        "activityTime": at.timestamp(),
        "activityType": "CONDITION",
        "statusCode": status,
        "status": status,
        "activityResult": "SUCCESS",
        "severity": severity,
        "priority": "HIGH",
        "seriesUid": series,
        "sourceConfigUid": condition,
        "sourceName": condition_name,
        "deviceId": device,
        "organizationId": int(org) if str(org).isdigit() else org,
        "message": message,
        "type": "Condition",
        "device": {
            "id": device,
            "organizationId": int(org) if str(org).isdigit() else org,
            "displayName": device_name,
            "systemName": device_name.lower(),
            "nodeClass": "WINDOWS_SERVER",
        },
    }
    if severity is None:
        del body["severity"]
    body.update(extra)
    return body


def deliver(client: Client, body: dict[str, Any] | bytes | str, *, secret: str | None = SECRET,
            bearer: bool = False, path: str = PATH) -> Any:  # fmt: skip
    """POST ``body`` as NinjaOne does, with the secret in the custom header (or as a bearer token)."""
    raw = body if isinstance(body, bytes | str) else json.dumps(body)
    headers: dict[str, Any] = {}
    if secret is not None:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if bearer else {"HTTP_X_KEEL_WEBHOOK_SECRET": secret}
    return client.post(path, raw, content_type="application/json", **headers)
