"""How long Keel keeps what providers sent it.

A webhook's body (Stripe's event, Calendly's invitee with their answers, NinjaOne's activity) is kept while it may
still be needed: to process it, to retry it, to let staff see what arrived. After ``PROVIDER_PAYLOAD_DAYS`` (90 by
default) the body of a delivery that was dealt with is forgotten (emptied), once a day. The row stays, with its
provider id, type, outcome and dates: a late redelivery is still recognised and changes nothing, and the admin still
shows what came and what Keel did with it. What the body told Keel lives on in Keel's own records (the subscription,
the booking, the alert), as long as those are kept.

Kept in full: Stripe events still to be processed, and those that failed (staff resolve them and may process them
again). Personal information a provider sent for one purpose is so not kept indefinitely (APP 11.2).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.utils import timezone

# (app_label.Model, the rows whose body may be forgotten once old enough): each has ``payload`` and ``received_at``.
PAYLOAD_TABLES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("billing.StripeEvent", {"status__in": ("DONE", "IGNORED")}),
    ("calendly.WebhookEvent", {}),
    ("ninjaone.WebhookEvent", {}),
)


def provider_payloads_forget(*, now: datetime | None = None) -> dict[str, int]:
    """Empty the bodies of the deliveries received more than ``PROVIDER_PAYLOAD_DAYS`` ago; how many per table."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PROVIDER_PAYLOAD_DAYS)
    forgotten = {}
    for label, condition in PAYLOAD_TABLES:
        model = apps.get_model(label)
        stale = model._default_manager.filter(received_at__lt=cutoff, **condition).exclude(payload={})
        forgotten[label] = stale.update(payload={})
    return forgotten


@shared_task
def forget_provider_payloads() -> dict[str, int]:
    """Beat, daily: :func:`provider_payloads_forget`."""
    return provider_payloads_forget()
