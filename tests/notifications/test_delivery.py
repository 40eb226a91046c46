"""Sending deliveries: SMS through the provider (sandbox, recorded) but never to the do-not-contact list, Slack through
recorded HTTP, retries with backoff until the last attempt (or after the provider's Retry-After when that is longer,
within a limit), claims that send each delivery once, and the beat that picks up what is due."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from django.core import mail
from responses import RequestsMock

from notifications.catalogue import SMS
from notifications.models import Delivery, DeliveryStatus, Reason
from notifications.services.delivery import MAX_ATTEMPTS, RETRY_DELAYS, RETRY_MOST, delivery_send
from notifications.services.preferences import preferences_update, slack_webhook_set
from notifications.tasks import retry_due
from sms import providers as sms_providers
from sms.models import DoNotContact
from sms.providers.base import ProviderError
from sms.providers.sandbox import SandboxProvider
from sms.services.contacts import dnc_add
from tests.notifications.conftest import ACME_NUMBER, NOW

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnop"
INCIDENT = {"title": "VPN down", "message": "Users can't connect & the <b>gateway</b> is down.", "url": "/status/"}


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://portal.keel.test"


@pytest.fixture
def sms_alice(acme, alice, number):
    alice.phone = "0412 000 111"
    alice.save(update_fields=["phone"])
    preferences_update(organization=acme, user=alice, choices={"payment.failed": {SMS}})
    return alice


@pytest.fixture
def slack(acme, alice):
    return slack_webhook_set(organization=acme, url=HOOK, event_types=["platform.incident"], actor=alice)


def test_sms_goes_through_the_provider_from_the_organizations_number(send, acme, sms_alice, frozen):
    context = {"currency": "AUD", "amount": "99.50", "url": "/billing/"}
    notice = send(organization=acme, event_type="payment.failed", context=context, users=[sms_alice])

    [record] = SandboxProvider.records()
    assert (record.message.to, record.message.from_) == ("+61412000111", ACME_NUMBER)
    assert record.message.body == (
        "Acme Pty Ltd: a payment of AUD 99.50 failed. Please update your card. https://portal.keel.test/billing/"
    )
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.status, delivery.provider_id, delivery.attempts, delivery.sent_at) == (
        DeliveryStatus.SENT, record.state.sid, 1, NOW,
    )  # fmt: skip


def test_a_number_on_the_do_not_contact_list_is_skipped(send, acme, sms_alice, frozen):
    dnc_add(organization=acme, phone_e164="+61412000111", reason="manual")
    notice = send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.status, delivery.reason) == (DeliveryStatus.SKIPPED, "dnc")
    assert SandboxProvider.records() == []


def test_another_organizations_do_not_contact_list_does_not_apply(send, acme, globex, sms_alice, frozen):
    DoNotContact.objects.create(organization=globex, phone_e164="+61412000111", reason="manual")
    send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    assert len(SandboxProvider.records()) == 1


def test_without_a_sending_number_sms_is_skipped(send, acme, sms_alice, number, frozen):
    number.active = False
    number.save(update_fields=["active"])
    notice = send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.status, delivery.reason) == (DeliveryStatus.SKIPPED, Reason.NO_SENDER)


def test_a_refused_number_fails_at_once(send, acme, sms_alice, frozen, monkeypatch):
    def refuse(self: Any, message: Any) -> Any:
        raise ProviderError("Twilio: The 'To' number is not a valid phone number.", code="21211")

    monkeypatch.setattr(SandboxProvider, "send", refuse)
    notice = send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.status, delivery.reason, delivery.attempts) == (DeliveryStatus.FAILED, Reason.REFUSED, 1)
    assert delivery.last_error == "Twilio: The 'To' number is not a valid phone number. (21211)"


def test_a_retried_sms_whose_first_answer_was_lost_is_not_sent_twice(send, acme, sms_alice, frozen, monkeypatch):
    real_send = SandboxProvider.send
    calls: list[str] = []

    def accepted_but_lost(self: Any, message: Any) -> Any:
        calls.append(message.to)
        state = real_send(self, message)
        if len(calls) == 1:
            raise ProviderError("Twilio: read timed out", retryable=True)
        return state

    monkeypatch.setattr(SandboxProvider, "send", accepted_but_lost)
    notice = send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    [delivery] = Delivery.objects.filter(notice=notice)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.PENDING, 1, NOW + timedelta(seconds=RETRY_DELAYS[0]),
    )  # fmt: skip

    frozen.shift(timedelta(seconds=RETRY_DELAYS[0]))
    assert retry_due() == 1
    delivery.refresh_from_db()
    [record] = SandboxProvider.records()
    assert (delivery.status, delivery.provider_id, delivery.attempts) == (DeliveryStatus.SENT, record.state.sid, 2)
    assert calls == ["+61412000111"]  # the provider was asked, not sent to again


@responses.activate
def test_slack_gets_the_routed_event_types_as_text(send, acme, alice, slack, frozen):
    responses.post(HOOK, body="ok")
    notice = send(organization=acme, event_type="platform.incident", context=INCIDENT)

    [call] = responses.calls
    assert json.loads(call.request.body or b"") == {  # type: ignore[arg-type]
        "text": ":rotating_light: *Service incident: VPN down*\n"
        "Users can't connect &amp; the &lt;b&gt;gateway&lt;/b&gt; is down.\n"
        "<https://portal.keel.test/status/|Follow the incident>"
    }
    assert call.request.req_kwargs["timeout"] == 10.0  # type: ignore[attr-defined]
    slack_delivery = Delivery.objects.get(notice=notice, channel="slack")
    assert (slack_delivery.status, slack_delivery.to, slack_delivery.sent_at) == (DeliveryStatus.SENT, "", NOW)
    # An event type not routed to Slack does not go there.
    send(organization=acme, event_type="platform.maintenance", context={"title": "Upgrade", "message": "Sunday"})
    assert len(responses.calls) == 1


@responses.activate
def test_slack_errors_are_retried_with_backoff_then_failed(send, acme, alice, slack, frozen):
    responses.post(HOOK, status=503, body="service unavailable")
    notice = send(organization=acme, event_type="platform.incident", context=INCIDENT)
    delivery = Delivery.objects.get(notice=notice, channel="slack")

    waits: list[int] = []
    for attempt in range(1, MAX_ATTEMPTS):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, attempt)
        assert delivery.next_attempt_at is not None
        waits.append(int((delivery.next_attempt_at - NOW).total_seconds()) - sum(waits))
        frozen.shift(timedelta(seconds=waits[-1] - 1))
        assert retry_due() == 0  # not due yet
        frozen.shift(timedelta(seconds=1))
        assert retry_due() == 1
    assert waits == [60, 300, 1800, 7200]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED, Reason.GAVE_UP, MAX_ATTEMPTS, None,
    )  # fmt: skip
    assert delivery.last_error == "Slack answered 503: service unavailable"
    assert len(responses.calls) == MAX_ATTEMPTS
    frozen.shift(timedelta(days=1))
    assert retry_due() == 0


@responses.activate
def test_a_timeout_is_retried_and_a_removed_webhook_fails_at_once(send, acme, alice, slack, frozen):
    responses.post(HOOK, body=requests.exceptions.ConnectTimeout("slow"))
    notice = send(organization=acme, event_type="platform.incident", context=INCIDENT)
    delivery = Delivery.objects.get(notice=notice, channel="slack")
    assert (delivery.status, delivery.last_error) == (
        DeliveryStatus.PENDING,
        "Slack could not be reached: ConnectTimeout.",
    )

    responses.replace(responses.POST, HOOK, status=404, body="no_service")
    frozen.shift(timedelta(seconds=60))
    retry_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.last_error) == (
        DeliveryStatus.FAILED, Reason.REFUSED, "Slack answered 404: no_service",
    )  # fmt: skip


@responses.activate
def test_a_redirect_is_not_followed(send, acme, alice, slack, frozen):
    responses.post(HOOK, status=302, headers={"Location": "https://intranet.acme.test/"})
    notice = send(organization=acme, event_type="platform.incident", context=INCIDENT)
    delivery = Delivery.objects.get(notice=notice, channel="slack")
    assert (delivery.status, delivery.reason) == (DeliveryStatus.FAILED, Reason.REFUSED)
    assert [call.request.url for call in responses.calls] == [HOOK]


@responses.activate
def test_slack_turned_off_before_sending_is_skipped(acme, alice, slack, frozen, django_capture_on_commit_callbacks):
    from notifications.services import notify
    from notifications.services.preferences import slack_webhook_remove

    notice = notify(organization=acme, event_type="platform.incident", context=INCIDENT, users=[])
    slack_webhook_remove(organization=acme, actor=alice)
    delivery = Delivery.objects.get(notice=notice)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SKIPPED
    delivery.refresh_from_db()
    assert delivery.reason == Reason.NO_WEBHOOK and len(responses.calls) == 0


def test_a_delivery_is_sent_once_however_often_its_task_runs(acme, alice, frozen):
    from notifications.services import notify

    notice = notify(organization=acme, event_type="invoice.issued", context={}, users=[alice])  # not committed yet
    delivery = Delivery.objects.get(notice=notice)
    assert delivery_send(delivery_id=delivery.pk) == DeliveryStatus.SENT
    assert delivery_send(delivery_id=delivery.pk) == ""
    assert retry_due() == 0
    assert len(mail.outbox) == 1  # sent by the run that claimed it, and by no other


def test_a_claimed_delivery_is_left_alone_until_its_claim_runs_out(acme, alice, frozen):
    from notifications.services import notify
    from notifications.services.delivery import LEASE, deliveries_due

    notice = notify(organization=acme, event_type="invoice.issued", context={}, users=[alice])
    delivery = Delivery.objects.get(notice=notice)
    Delivery.objects.filter(pk=delivery.pk).update(locked_until=NOW + LEASE, attempts=1)  # a worker died holding it
    assert deliveries_due() == []
    assert delivery_send(delivery_id=delivery.pk) == ""
    frozen.shift(LEASE)
    assert deliveries_due() == [str(delivery.pk)]


def test_deliveries_whose_task_was_lost_are_sent_by_the_beat(send, acme, alice, frozen, monkeypatch):
    from notifications import tasks

    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.send_delivery, "delay", broker_down)
    notice = send(organization=acme, event_type="invoice.issued", context={}, users=[alice])
    assert Delivery.objects.get(notice=notice).status == DeliveryStatus.PENDING and mail.outbox == []
    monkeypatch.undo()

    assert retry_due() == 1
    assert Delivery.objects.get(notice=notice).status == DeliveryStatus.SENT


# -- the provider's Retry-After ----------------------------------------------------------------------------------------


def assert_retried_at(delivery: Delivery, wait: timedelta, frozen: Any) -> None:
    """``delivery`` is pending, due ``wait`` from now, and the beat leaves it alone until then."""
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (DeliveryStatus.PENDING, 1, NOW + wait)
    frozen.shift(wait - timedelta(seconds=1))
    assert retry_due() == 0
    frozen.shift(timedelta(seconds=1))
    assert retry_due() == 1


@responses.activate
@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("900", timedelta(minutes=15)),  # longer than the first backoff (1 min): Slack's wait
        ("20", timedelta(seconds=RETRY_DELAYS[0])),  # shorter: the backoff
        ("86400", RETRY_MOST),  # a day: no longer than the schedule's longest wait
        (None, timedelta(seconds=RETRY_DELAYS[0])),  # none: the backoff
    ],
)
def test_a_slack_rate_limit_waits_as_long_as_slack_asks_within_the_limit(
    send, acme, alice, slack, frozen, retry_after, wait
):
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    responses.post(HOOK, status=429, body="rate_limited", headers=headers)
    responses.post(HOOK, body="ok")
    notice = send(organization=acme, event_type="platform.incident", context=INCIDENT)
    delivery = Delivery.objects.get(notice=notice, channel="slack")
    assert delivery.last_error == "Slack answered 429: rate_limited"

    assert_retried_at(delivery, wait, frozen)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    assert len(responses.calls) == 2


def test_the_longest_wait_is_the_schedules_longest():
    assert RETRY_MOST == timedelta(seconds=max(RETRY_DELAYS)) == timedelta(hours=2)


SENDGRID_SEND = "https://api.sendgrid.com/v3/mail/send"


@pytest.fixture
def sendgrid(settings: Any) -> Iterator[RequestsMock]:
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key"}
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_a_sendgrid_rate_limit_with_an_http_date_waits_until_then(send, acme, alice, sendgrid, frozen):
    until = NOW + timedelta(minutes=20)
    sendgrid.post(
        SENDGRID_SEND,
        status=429,
        json={"errors": [{"message": "too many requests", "field": None, "help": None}]},
        headers={"Retry-After": format_datetime(until, usegmt=True)},  # "Tue, 17 Nov 2026 01:20:00 GMT"
    )
    sendgrid.post(SENDGRID_SEND, status=202, headers={"X-Message-Id": "sg-message-1"})
    notice = send(organization=acme, event_type="invoice.issued", context={}, users=[alice])
    delivery = Delivery.objects.get(notice=notice, channel="email")
    assert delivery.last_error.startswith("SendGrid answered 429: ")

    assert_retried_at(delivery, timedelta(minutes=20), frozen)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.sent_at) == (DeliveryStatus.SENT, 2, until)
    assert len(sendgrid.calls) == 2


TWILIO_ACCOUNT = "AC1f2e3d4c5b6a79881f2e3d4c5b6a7988"
TWILIO_MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{TWILIO_ACCOUNT}/Messages.json"


@pytest.fixture
def twilio(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestsMock]:
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = TWILIO_ACCOUNT
    settings.TWILIO_AUTH_TOKEN = "twilio-test-auth-token"
    monkeypatch.setattr(sms_providers.get_provider, "instances", {})
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def test_a_twilio_rate_limit_waits_as_long_as_twilio_asks(send, acme, sms_alice, twilio, frozen):
    twilio.post(
        TWILIO_MESSAGES,
        status=429,
        json={"code": 20429, "message": "Too Many Requests", "status": 429},
        headers={"Retry-After": "600"},
    )
    notice = send(organization=acme, event_type="payment.failed", context={}, users=[sms_alice])
    delivery = Delivery.objects.get(notice=notice, channel="sms")
    delivery.refresh_from_db()
    assert delivery.last_error == "Twilio: Unable to create record: Too Many Requests (HTTP 429, code 20429)"
    assert delivery.next_attempt_at == NOW + timedelta(minutes=10)  # not the first backoff's minute
    assert len(twilio.calls) == 1
