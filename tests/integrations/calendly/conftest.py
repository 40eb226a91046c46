from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from integrations.calendly.signing import sign
from qualification.models import Qualification

KEY = "calendly-test-signing-key"
API = "https://api.calendly.com"
START = "2030-12-01T23:00:00.000000Z"  # Monday 2 December 2030, 10:00 in Sydney (AEDT)


@pytest.fixture(autouse=True)
def calendly_settings(settings):
    settings.CALENDLY_WEBHOOK_SIGNING_KEY = KEY
    settings.CALENDLY_WEBHOOK_TOLERANCE = 180
    settings.CALENDLY_BOOKING_URL = ""
    return settings


def invitee(
    email: str,
    *,
    event: str = "invitee.created",
    name: str = "A",
    start: str = START,
    end: str = "2030-12-01T23:30:00.000000Z",
    created_at: str = "2030-11-20T01:00:00.000000Z",
    rescheduled: bool = False,
    zone: str | None = "Australia/Sydney",
    utm_content: str | None = None,
) -> dict[str, Any]:
    """A Calendly delivery as Calendly shapes it; ``name`` names the invitee (one booking)."""
    event_uri = f"{API}/scheduled_events/EV{name}"
    payload: dict[str, Any] = {
        "uri": f"{event_uri}/invitees/IN{name}",
        "email": email,
        "name": "Pat Prospect",
        "first_name": None,
        "status": "canceled" if event == "invitee.canceled" else "active",
        "timezone": zone,
        "event": event_uri,
        "rescheduled": rescheduled,
        "old_invitee": None,
        "new_invitee": None,
        "questions_and_answers": [],
        "tracking": {
            "utm_campaign": None,
            "utm_source": None,
            "utm_medium": None,
            "utm_content": utm_content,
            "utm_term": None,
            "salesforce_uuid": None,
        },
        "scheduled_event": {
            "uri": event_uri,
            "name": "Discovery call",
            "status": "active",
            "start_time": start,
            "end_time": end,
            "event_type": f"{API}/event_types/DISCOVERY",
        },
        "cancel_url": f"https://calendly.com/cancellations/IN{name}",
        "reschedule_url": f"https://calendly.com/reschedulings/IN{name}",
        "created_at": "2030-11-20T01:00:00.000000Z",
        "updated_at": created_at,
    }
    if event == "invitee.canceled":
        payload["cancellation"] = {"canceled_by": "Pat Prospect", "reason": None, "canceler_type": "invitee",
                                   "created_at": created_at}  # fmt: skip
    return {"event": event, "created_at": created_at, "created_by": f"{API}/users/HOST", "payload": payload}


def post(client: Client, body: bytes, signature: str | None, path: str = "/webhooks/calendly/") -> Any:
    headers = {"Calendly-Webhook-Signature": signature} if signature is not None else {}
    return client.post(path, body, content_type="application/json", headers=headers)


def deliver(client: Client, document: dict[str, Any], path: str = "/webhooks/calendly/") -> Any:
    body = json.dumps(document).encode()
    return post(client, body, sign(body, KEY, int(time.time())), path)


def make(email: str = "pat@prospect.test", tier: str = "premium", status: str = "DISCOVERY_CALL", **extra: Any):
    return Qualification.objects.create(tier=tier, customer_email=email, status=status, auto_score=57, **extra)
