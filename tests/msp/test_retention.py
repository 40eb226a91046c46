"""Forgetting what providers sent once it was dealt with: after PROVIDER_PAYLOAD_DAYS the body of a Stripe event that
was processed (or not handled), of a Calendly delivery and of a NinjaOne activity is emptied, and the row stays, so a
redelivery is still recognised. Stripe events still to process, or that failed, keep theirs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings

from billing.models import StripeEvent, StripeEventStatus
from integrations.calendly.models import WebhookEvent as CalendlyDelivery
from integrations.ninjaone.models import WebhookEvent as NinjaDelivery
from msp.retention import forget_provider_payloads, provider_payloads_forget
from tests.billing.conftest import deliver, event
from tests.msp.test_settings_rules import load_settings

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 3, 10, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)
BODY = {"invitee": {"name": "Sam Prospect", "email": "sam@prospect.test"}}


def stripe_event(n: int, status: str, received_at: datetime) -> StripeEvent:
    return StripeEvent.objects.create(event_id=f"evt_{n}", type="customer.updated", created=1_700_000_000 + n,
                                      payload={"data": {"object": {"email": "a@b.test"}}}, status=status,
                                      received_at=received_at)  # fmt: skip


def calendly(n: int, received_at: datetime) -> CalendlyDelivery:
    return CalendlyDelivery.objects.create(key=f"k{n}", event_type="invitee.created", invitee_uri=f"https://i/{n}",
                                           created_at=received_at, received_at=received_at, payload=BODY)  # fmt: skip


def ninja(n: int, received_at: datetime) -> NinjaDelivery:
    return NinjaDelivery.objects.create(provider_event_id=str(n), ninjaone_org_id="7", status="TRIGGERED",
                                        outcome="ignored", payload={"message": "Disk C: 95% full"},
                                        received_at=received_at)  # fmt: skip


def payloads(model: Any) -> dict[Any, Any]:
    return dict(model.objects.values_list("pk", "payload"))


def test_old_bodies_of_dealt_with_deliveries_are_emptied_and_their_rows_kept():
    done, ignored = stripe_event(1, StripeEventStatus.DONE, OLD), stripe_event(2, StripeEventStatus.IGNORED, OLD)
    pending, failed = stripe_event(3, StripeEventStatus.PENDING, OLD), stripe_event(4, StripeEventStatus.FAILED, OLD)
    recent = stripe_event(5, StripeEventStatus.DONE, RECENT)
    old_booking, new_booking = calendly(1, OLD), calendly(2, RECENT)
    old_alert, new_alert = ninja(1, OLD), ninja(2, RECENT)

    assert provider_payloads_forget(now=NOW) == {
        "billing.StripeEvent": 2, "calendly.WebhookEvent": 1, "ninjaone.WebhookEvent": 1,
    }  # fmt: skip
    kept = payloads(StripeEvent)
    assert kept[done.pk] == {} and kept[ignored.pk] == {}
    assert all(kept[event.pk] != {} for event in (pending, failed, recent))
    assert payloads(CalendlyDelivery) == {old_booking.pk: {}, new_booking.pk: BODY}
    assert payloads(NinjaDelivery) == {old_alert.pk: {}, new_alert.pk: {"message": "Disk C: 95% full"}}
    assert StripeEvent.objects.count() == 5 and CalendlyDelivery.objects.count() == 2  # the rows stay
    assert set(provider_payloads_forget(now=NOW).values()) == {0}  # nothing more to forget


def test_a_stripe_redelivery_of_a_forgotten_event_is_still_recognised(client, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_retention"
    stripe_event(1, StripeEventStatus.DONE, OLD)
    provider_payloads_forget(now=NOW)
    again = event("customer.updated", {"id": "cus_1", "email": "a@b.test"}, event_id="evt_1")
    assert deliver(client, again, secret="whsec_retention").status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.status, stored.payload) == (StripeEventStatus.DONE, {})  # recognised; nothing stored again


def test_the_days_come_from_the_setting_and_the_beat_runs_it_daily(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(settings, "PROVIDER_PAYLOAD_DAYS", 30)
    booking = calendly(1, NOW - timedelta(days=31))
    assert provider_payloads_forget(now=NOW)["calendly.WebhookEvent"] == 1
    booking.refresh_from_db()
    assert booking.payload == {}
    assert forget_provider_payloads.name == "msp.retention.forget_provider_payloads"
    assert settings.CELERY_BEAT_SCHEDULE["msp-forget-provider-payloads"]["task"] == forget_provider_payloads.name


def test_fewer_than_seven_days_is_refused():
    result = load_settings(PROVIDER_PAYLOAD_DAYS="3")
    assert result.returncode != 0
    assert "PROVIDER_PAYLOAD_DAYS must be at least 7: providers redeliver for days." in result.stderr
