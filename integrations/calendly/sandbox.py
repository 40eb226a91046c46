"""A stand-in for Calendly in local runs: build the delivery Calendly would send when a prospect books (or cancels)
their discovery call, sign it with the configured key, and hand it to the real webhook view, so it takes the same
path as production: signature check, deduplication and the status rules. ``manage.py calendly_simulate`` uses it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from integrations.calendly import signing
from integrations.calendly.services import CANCELED, CREATED
from integrations.calendly.views import calendly_webhook
from qualification.models import Qualification

API = "https://api.calendly.com"
WEBHOOK_PATH = "/webhooks/calendly/"


def invitee_event(
    qualification: Qualification,
    *,
    event: str = CREATED,
    start: datetime,
    minutes: int = 30,
    invitee_uri: str | None = None,
    rescheduled: bool = False,
    zone: str = "",
) -> dict[str, Any]:
    """The body Calendly sends about ``qualification``'s prospect: the fields Keel reads, shaped as Calendly's."""
    if invitee_uri is None:
        invitee_uri = f"{API}/scheduled_events/{uuid.uuid4().hex.upper()}/invitees/{uuid.uuid4().hex.upper()}"
    event_uri = invitee_uri.split("/invitees/")[0]
    now = timezone.now().isoformat().replace("+00:00", "Z")
    payload: dict[str, Any] = {
        "uri": invitee_uri,
        "email": qualification.customer_email,
        "name": qualification.name,
        "status": "canceled" if event == CANCELED else "active",
        "timezone": zone or settings.TIME_ZONE,
        "rescheduled": rescheduled,
        "event": event_uri,
        "scheduled_event": {
            "uri": event_uri,
            "name": "Discovery call",
            "status": "canceled" if event == CANCELED else "active",
            "start_time": start.isoformat(),
            "end_time": (start + timedelta(minutes=minutes)).isoformat(),
        },
        "tracking": {"utm_source": "keel", "utm_medium": "sandbox", "utm_content": str(qualification.id)},
        "created_at": now,
        "updated_at": now,
    }
    if event == CANCELED:
        payload["cancellation"] = {"canceled_by": qualification.name, "canceler_type": "invitee", "created_at": now}
    return {"event": event, "created_at": now, "created_by": f"{API}/users/SANDBOX", "payload": payload}


def deliver(document: dict[str, Any]) -> HttpResponse:
    """Sign ``document`` as Calendly would and post it to the webhook view; returns the view's answer."""
    if settings.PRODUCTION:
        raise ImproperlyConfigured("The Calendly sandbox does not run in production.")
    body = json.dumps(document).encode()
    signature = signing.sign(body, settings.CALENDLY_WEBHOOK_SIGNING_KEY, int(timezone.now().timestamp()))
    request = RequestFactory().post(
        WEBHOOK_PATH, body, content_type="application/json", headers={signing.HEADER: signature}
    )
    return calendly_webhook(request)
