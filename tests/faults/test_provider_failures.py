"""Provider failures against recorded HTTP (``responses``; any request not recorded fails): Twilio, Stripe, SendGrid
and QuickBooks answering 500, timing out and rate limiting (429 with Retry-After). Each is driven through Keel's own
task or service path (Celery runs tasks inline in tests, so a retry is made by calling the beat task that would make
it, after moving the clock past the wait with time-machine). Each case shows that the work is retried after a wait,
that it has its effect once when the provider finally accepts, and that the staff admin says where it stands.

What each provider allows:

- **Twilio** keeps no idempotency key for a message. Before sending again, Keel lists the messages between the two
  numbers and adopts one with the same body sent since the first attempt (``find``), so a message Twilio accepted
  while its answer was lost is not sent twice. A notification SMS waits 1 min, 5 min, 30 min, 2 h between tries; a
  campaign message 2, 4, 8 ... min (at most an hour).
- **Stripe** dedupes on the ``Idempotency-Key`` Keel sends; the SDK retries a 5xx or a network error itself (twice,
  with a growing sleep) under the same key, but not a 429; Keel's next collection run asks again with the same key.
- **SendGrid** keeps no idempotency key, and cannot be asked whether a message went out: an email it accepted while
  its answer was lost is sent again by the retry, as the same message (the same Message-ID, made from the
  delivery's id), which mailboxes that drop repeated Message-IDs show once. An email waits as a notification SMS
  does.
- **QuickBooks**: before creating an invoice Keel looks it up by its number, so an invoice created while the answer
  was lost is adopted and updated, not created twice. It waits 1 min, 5 min, 30 min, 2 h, 6 h, then gives up.

Every provider's ``Retry-After`` is waited for when it asks for longer than Keel's own wait, within a limit
(``msp/retry_after.py``; tests/sms/test_provider_wait.py, tests/notifications/test_delivery.py,
tests/billing/test_collection.py, tests/integrations/quickbooks/test_push.py, tests/events/test_webhooks.py). The
429s below carry one shorter than Keel's own wait at that point, which is what is then kept.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import stripe
import time_machine
from django.db import transaction
from django.test import Client
from responses import RequestsMock

from billing import providers as payment_providers
from billing.models import BillingSettings, Invoice, InvoiceStatus
from billing.services.invoices import invoice_create, invoice_finalize
from billing.tasks import process_failed_payments
from integrations.quickbooks import providers as quickbooks_providers
from integrations.quickbooks.models import QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.sync import BACKOFF
from integrations.quickbooks.tasks import sync_due
from notifications.catalogue import SMS
from notifications.models import Delivery, DeliveryStatus, Reason
from notifications.services import notify
from notifications.services.delivery import MAX_ATTEMPTS, RETRY_DELAYS
from notifications.services.preferences import preferences_update
from notifications.tasks import retry_due
from sms import providers as sms_providers
from sms.models import JobState, SendingNumber, SendJob
from sms.services.campaigns import campaign_create, campaign_launch, template_create
from sms.services.contacts import contact_create
from sms.services.handover import retry_wait
from sms.tasks import dispatch_messages
from tenancy.crypto import encrypt
from tenancy.models import Organization, User
from tests.billing.conftest import quote  # noqa: F401 (a Core+ quote to pay)
from tests.helpers import admin_client
from tests.quotes.conftest import price_book, prospect, qualify, staff, staff_client  # noqa: F401

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # Monday 23 November 2026, 10:00 in Sydney


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[[Callable[[], Any]], Any]:
    """Run ``work`` in a transaction, then what it queued on commit (Celery runs the tasks inline)."""

    def run(work: Callable[[], Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            return work()

    return run


def shown(client: Client, path: str, field: str) -> str:
    """What the admin change page at ``path`` shows for the read-only ``field``, as text."""
    response = client.get(path)
    assert response.status_code == 200, path
    page = response.content.decode()
    found = re.search(rf'class="form-row[^"]*\bfield-{field}\b.*?<div class="readonly">(.*?)</div>', page, re.S)
    assert found is not None, f"{path} shows no {field}"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def walk_retries(delivery, expected: list[str], admin: Client, page: str, clock) -> tuple[list[timedelta], datetime]:
    """Follow a delivery through its failed attempts: after each, it is pending with that error (in the admin too),
    and the retry runs at its next attempt time, not a second before. Returns the waits and the last attempt's time."""
    at = NOW
    waits: list[timedelta] = []
    for attempt, error in enumerate(expected, start=1):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.PENDING, attempt, error)
        assert delivery.next_attempt_at is not None
        waits.append(delivery.next_attempt_at - at)
        assert (shown(admin, page, "status"), shown(admin, page, "last_error")) == ("Pending", error)
        clock.shift(waits[-1] - timedelta(seconds=1))
        assert retry_due() == 0  # not before its time
        clock.shift(timedelta(seconds=1))
        at += waits[-1]
        assert retry_due() == 1
    return waits, at


def posts(mock: RequestsMock, url: str) -> list[Any]:
    return [call for call in mock.calls if call.request.method == "POST" and str(call.request.url).split("?")[0] == url]


def accepted(calls: list[Any]) -> list[Any]:
    """The calls the provider answered with a 2xx (a raised timeout has no status)."""
    return [call for call in calls if 200 <= getattr(call.response, "status_code", 0) < 300]


# ======================================================================================================================
# Twilio
# ======================================================================================================================

ACCOUNT = "AC1f2e3d4c5b6a79881f2e3d4c5b6a7988"
MESSAGES = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
SID = "SM0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ACME_NUMBER = "+61491570001"
ALICE_MOBILE = "+61412000111"


@pytest.fixture
def twilio(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestsMock]:
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.TWILIO_AUTH_TOKEN = "twilio-test-auth-token"
    settings.SITE_URL = "https://portal.keel.test"
    monkeypatch.setattr(sms_providers.get_provider, "instances", {})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def number(acme: Organization) -> SendingNumber:
    return SendingNumber.objects.create(
        organization=acme, phone_e164=ACME_NUMBER, warmup_start=date(2026, 1, 1), per_second=10
    )


@pytest.fixture
def sms_alice(acme: Organization, alice: User, number: SendingNumber) -> User:
    """Alice, who asked to be told of failed payments by SMS."""
    alice.phone = "0412 000 111"
    alice.save(update_fields=["phone"])
    preferences_update(organization=acme, user=alice, choices={"payment.failed": {SMS}})
    return alice


def twilio_message(body: str, *, to: str = ALICE_MOBILE, sid: str = SID, created: datetime = NOW) -> dict[str, Any]:
    stamp = format_datetime(created.astimezone(UTC))
    return {"account_sid": ACCOUNT, "api_version": "2010-04-01", "body": body, "date_created": stamp,
            "date_sent": None, "date_updated": stamp, "direction": "outbound-api", "error_code": None,
            "error_message": None, "from": ACME_NUMBER, "messaging_service_sid": None, "num_media": "0",
            "num_segments": "1", "price": None, "price_unit": "USD", "sid": sid, "status": "queued", "to": to,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json"}  # fmt: skip


def twilio_page(*messages: dict[str, Any]) -> dict[str, Any]:
    uri = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?PageSize=50&Page=0"
    return {"messages": list(messages), "end": max(len(messages) - 1, 0), "first_page_uri": uri, "uri": uri,
            "next_page_uri": None, "page": 0, "page_size": 50, "previous_page_uri": None, "start": 0}  # fmt: skip


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}  # fmt: skip


def tell_alice(committed: Callable[..., Any], acme: Organization, alice: User) -> Delivery:
    notice = committed(lambda: notify(organization=acme, event_type="payment.failed", users=[alice],
                                      context={"currency": "AUD", "amount": "99.50", "url": "/billing/"}))  # fmt: skip
    return Delivery.objects.get(notice=notice, channel="sms")


def test_twilio_500_timeout_and_429_are_retried_on_a_growing_backoff_and_the_sms_is_sent_once(
    twilio,
    committed,
    acme,
    sms_alice,
    clock,
    staff_client,  # noqa: F811
):
    twilio.post(MESSAGES, status=500, json=twilio_error(20500, "Internal Server Error", 500))
    twilio.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    twilio.post(MESSAGES, status=429, json=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "30"})
    twilio.post(MESSAGES, status=201, json=twilio_message("Acme Pty Ltd: a payment of AUD 99.50 failed."))
    twilio.get(MESSAGES, json=twilio_page())  # before each retry: Twilio has no such message yet

    delivery = tell_alice(committed, acme, sms_alice)
    page = f"/admin/notifications/delivery/{delivery.pk}/change/"
    expected = [
        "Twilio: Unable to create record: Internal Server Error (HTTP 500, code 20500)",
        "Twilio could not be reached (ReadTimeout)",
        # Twilio's Retry-After (30 s) is shorter than Keel's own wait, which is kept.
        "Twilio: Unable to create record: Too Many Requests (HTTP 429, code 20429)",
    ]
    waits, at = walk_retries(delivery, expected, staff_client, page, clock)

    delivery.refresh_from_db()
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)]
    assert (delivery.status, delivery.attempts, delivery.provider_id, delivery.sent_at) == (
        DeliveryStatus.SENT, 4, SID, at,
    )  # fmt: skip
    sends = posts(twilio, MESSAGES)
    assert len(sends) == 4 and len(accepted(sends)) == 1
    assert all(parse_qs(call.request.body)["To"] == [ALICE_MOBILE] for call in sends)
    lookups = [call for call in twilio.calls if call.request.method == "GET"]
    assert len(lookups) == 2 * 3  # each retry first asked Twilio (dated, then undated) whether it went out
    assert (shown(staff_client, page, "status"), shown(staff_client, page, "last_error")) == ("Sent", "-")
    assert shown(staff_client, page, "provider_id") == SID
    assert retry_due() == 0


def test_an_sms_twilio_accepted_before_its_answer_timed_out_is_adopted_not_sent_again(
    twilio, committed, acme, sms_alice, clock
):
    twilio.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    delivery = tell_alice(committed, acme, sms_alice)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)

    # Twilio did create it: the listing of the two numbers' messages since the first attempt shows it.
    twilio.get(MESSAGES, json=twilio_page(twilio_message(delivery.body, created=NOW)))
    clock.shift(timedelta(seconds=RETRY_DELAYS[0]))
    assert retry_due() == 1

    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_id, delivery.attempts) == (DeliveryStatus.SENT, SID, 2)
    assert len(posts(twilio, MESSAGES)) == 1  # asked, not sent again
    [lookup] = [call for call in twilio.calls if call.request.method == "GET"]
    query = parse_qs(urlsplit(lookup.request.url).query)
    assert (query["To"], query["From"], query["DateSent>"]) == ([ALICE_MOBILE], [ACME_NUMBER], ["2026-11-22"])


def test_an_sms_twilio_keeps_refusing_gives_up_after_the_last_attempt(twilio, committed, acme, sms_alice, clock):
    twilio.post(MESSAGES, status=503, body="<html><body>Service Unavailable</body></html>", content_type="text/html")
    twilio.get(MESSAGES, json=twilio_page())
    delivery = tell_alice(committed, acme, sms_alice)
    for wait in RETRY_DELAYS:
        clock.shift(timedelta(seconds=wait))
        assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts, delivery.next_attempt_at) == (
        DeliveryStatus.FAILED, Reason.GAVE_UP, MAX_ATTEMPTS, None,
    )  # fmt: skip
    assert "HTTP 503" in delivery.last_error
    assert len(posts(twilio, MESSAGES)) == MAX_ATTEMPTS and not accepted(posts(twilio, MESSAGES))


# -- campaign messages (the dispatcher) --------------------------------------------------------------------------------


@pytest.fixture
def campaign_job(acme: Organization, number: SendingNumber) -> SendJob:
    contact_create(organization=acme, phone="+61412500001", data={"first_name": "Pia"}, consent={"source": "web form"})
    template = template_create(organization=acme, name="Spring", body="Hi {first_name}, spring sale on now")
    campaign = campaign_create(organization=acme, name="Spring", template_ids=[template.pk], number_ids=[number.pk])
    campaign_launch(campaign=campaign)
    return SendJob.objects.get(campaign=campaign)


def test_a_campaign_message_whose_send_failed_is_looked_up_after_a_doubling_wait_then_sent_once(
    twilio,
    campaign_job,
    clock,
    staff_client,  # noqa: F811
):
    twilio.post(MESSAGES, status=500, json=twilio_error(20500, "Internal Server Error", 500))
    twilio.post(MESSAGES, status=429, json=twilio_error(20429, "Too Many Requests", 429), headers={"Retry-After": "1"})
    twilio.post(MESSAGES, body=requests.exceptions.ConnectTimeout("connect timed out"))
    twilio.post(MESSAGES, status=201, json=twilio_message("Acme Pty Ltd: Hi Pia", to="+61412500001"))
    twilio.get(MESSAGES, json=twilio_page())  # the lookups before each new send: nothing went out
    page = f"/admin/sms/sendjob/{campaign_job.pk}/change/"

    at = NOW
    waits = []
    for attempt, code in enumerate(["20500", "20429", ""], start=1):
        dispatch_messages()
        campaign_job.refresh_from_db()
        assert (campaign_job.state, campaign_job.attempts, campaign_job.error_code) == (JobState.SENDING, attempt, code)
        assert campaign_job.lease_until is not None
        waits.append(campaign_job.lease_until - at)
        assert (shown(staff_client, page, "state"), shown(staff_client, page, "error_code")) == ("Sending", code or "-")
        clock.shift(waits[-1])
        dispatch_messages()  # its wait is not over: it is neither looked up nor sent
        assert len(posts(twilio, MESSAGES)) == attempt
        assert len([call for call in twilio.calls if call.request.method == "GET"]) == 2 * (attempt - 1)
        clock.shift(timedelta(seconds=1))
        at += waits[-1] + timedelta(seconds=1)

    assert waits == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    assert waits == [retry_wait(1), retry_wait(2), retry_wait(3)]
    dispatch_messages()
    campaign_job.refresh_from_db()
    assert (campaign_job.state, campaign_job.provider_sid, campaign_job.attempts) == (JobState.SENT, SID, 4)
    assert len(posts(twilio, MESSAGES)) == 4 and len(accepted(posts(twilio, MESSAGES))) == 1
    assert (shown(staff_client, page, "state"), shown(staff_client, page, "provider_sid")) == ("Sent", SID)


def test_a_campaign_message_twilio_accepted_before_its_answer_timed_out_is_not_sent_again(twilio, campaign_job, clock):
    twilio.post(MESSAGES, body=requests.exceptions.ReadTimeout("read timed out (read timeout=10.0)"))
    dispatch_messages()
    campaign_job.refresh_from_db()
    assert (campaign_job.state, campaign_job.lease_until) == (JobState.SENDING, NOW + retry_wait(1))

    twilio.get(MESSAGES, json=twilio_page(twilio_message(campaign_job.body, to="+61412500001", created=NOW)))
    clock.shift(retry_wait(1) + timedelta(seconds=1))
    dispatch_messages()
    campaign_job.refresh_from_db()
    assert (campaign_job.state, campaign_job.provider_sid) == (JobState.SENT, SID)
    assert len(posts(twilio, MESSAGES)) == 1


def test_the_wait_after_a_failed_campaign_send_doubles_up_to_an_hour():
    assert [retry_wait(attempt) for attempt in (1, 2, 3, 4, 5, 6, 7, 40)] == [
        timedelta(minutes=minutes) for minutes in (2, 4, 8, 16, 32, 60, 60, 60)
    ]


# ======================================================================================================================
# Stripe
# ======================================================================================================================

STRIPE = "https://api.stripe.com"
INTENTS = f"{STRIPE}/v1/payment_intents"
SESSIONS = f"{STRIPE}/v1/checkout/sessions"
INTENT = "pi_3QzAbCdEfGhIjKlM1aBcDeFg"


@pytest.fixture
def stripe_sleeps() -> list[float]:
    return []


@pytest.fixture
def stripe_api(settings: Any, monkeypatch: pytest.MonkeyPatch, stripe_sleeps: list[float]) -> Iterator[RequestsMock]:
    """The real Stripe adapter (the SDK's default two network retries) against recorded answers. The SDK's sleeps
    between retries are recorded in ``stripe_sleeps`` (without their random jitter) instead of slept."""
    settings.STRIPE_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_API_VERSION = ""
    monkeypatch.setattr(payment_providers.get_provider, "instances", {})
    client = stripe._http_client.HTTPClient
    real_sleep_time = client._sleep_time_seconds

    def recorded(self: Any, num_retries: int, *args: Any) -> float:
        stripe_sleeps.append(real_sleep_time(self, num_retries, *args))
        return 0.0

    monkeypatch.setattr(client, "_add_jitter_time", lambda self, seconds: seconds)
    monkeypatch.setattr(client, "_sleep_time_seconds", recorded)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def stripe_error(kind: str, message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}


def intent(status: str = "succeeded") -> dict[str, Any]:
    return {"id": INTENT, "object": "payment_intent", "amount": 110000, "amount_received": 110000,
            "currency": "aud", "customer": "cus_acme", "payment_method": "pm_card_visa", "status": status,
            "last_payment_error": None, "livemode": False, "created": 1795000000, "metadata": {}}  # fmt: skip


@pytest.fixture
def card(acme: Organization) -> BillingSettings:
    Organization.objects.filter(pk=acme.pk).update(stripe_customer_id="cus_acme")
    return BillingSettings.objects.create(organization=acme, payment_method_id="pm_card_visa", autopay=True)


def issue(organization: Organization, amount: str = "1100.00") -> Invoice:
    draft = invoice_create(
        organization=organization,
        lines=[{"description": "Managed services", "quantity": "1", "unit_price": amount}],
        issue_date=NOW.date(),
        tax_rate=Decimal("0"),
    )
    invoice_finalize(invoice=draft, now=NOW)
    return Invoice.objects.get(pk=draft.pk)


def keys(calls: list[Any]) -> set[str]:
    return {call.request.headers["Idempotency-Key"] for call in calls}


def test_stripe_500_and_timeout_are_retried_by_the_sdk_under_one_idempotency_key_and_charge_once(
    stripe_api, stripe_sleeps, acme, alice, card, clock
):
    stripe_api.post(INTENTS, status=500, json=stripe_error("api_error", "Something went wrong on Stripe's end."))
    stripe_api.post(INTENTS, body=requests.exceptions.ReadTimeout("read timed out"))
    stripe_api.post(INTENTS, json=intent())
    invoice = issue(acme)
    assert invoice.next_payment_at == NOW

    assert process_failed_payments()["paid"] == 1

    invoice.refresh_from_db()
    [attempt] = invoice.attempts.all()
    assert (invoice.status, attempt.status, attempt.payment_intent_id) == (InvoiceStatus.PAID, "SUCCEEDED", INTENT)
    charges = posts(stripe_api, INTENTS)
    assert len(charges) == 3 and len(accepted(charges)) == 1
    assert keys(charges) == {attempt.idempotency_key} == {f"keel-invoice-{invoice.pk}-attempt-1"}
    assert stripe_sleeps == [0.5, 1.0]  # the SDK's own growing backoff, in seconds


def test_stripe_429_and_an_outage_beyond_the_sdks_retries_wait_for_keels_next_run_with_the_same_key(
    stripe_api,
    acme,
    alice,
    card,
    clock,
    staff_client,  # noqa: F811
):
    stripe_api.post(INTENTS, status=429, json=stripe_error("invalid_request_error", "Too many requests.", "rate_limit"),
                    headers={"Retry-After": "1"})  # fmt: skip
    stripe_api.post(INTENTS, status=503, json=stripe_error("api_error", "Service unavailable."))
    stripe_api.post(INTENTS, status=503, json=stripe_error("api_error", "Service unavailable."))
    stripe_api.post(INTENTS, status=503, json=stripe_error("api_error", "Service unavailable."))
    stripe_api.post(INTENTS, json=intent())
    invoice = issue(acme)
    page = "/admin/billing/paymentattempt/{}/change/"

    process_failed_payments()
    invoice.refresh_from_db()
    [attempt] = invoice.attempts.all()
    assert len(posts(stripe_api, INTENTS)) == 1  # the SDK does not retry a 429: Keel asks again later
    assert (attempt.status, invoice.status, invoice.next_payment_at) == ("PENDING", "OPEN", NOW + timedelta(minutes=15))
    rate_limited = "Stripe: Too many requests. (RateLimitError, HTTP 429)"
    assert (attempt.failure_code, attempt.failure_message) == ("rate_limited", rate_limited)
    assert shown(staff_client, page.format(attempt.pk), "status") == "Pending"
    assert shown(staff_client, page.format(attempt.pk), "failure_message") == rate_limited

    clock.shift(timedelta(minutes=15))
    process_failed_payments()
    invoice.refresh_from_db()
    attempt.refresh_from_db()
    assert len(posts(stripe_api, INTENTS)) == 1 + 3  # the SDK tried three times
    assert (attempt.status, invoice.next_payment_at) == ("PENDING", NOW + timedelta(minutes=30))
    assert (attempt.failure_code, attempt.failure_message) == (
        "provider_error",
        "Stripe: Service unavailable. (APIError, HTTP 503)",
    )

    clock.shift(timedelta(minutes=15))
    process_failed_payments()
    invoice.refresh_from_db()
    [paid] = invoice.attempts.all()
    assert (paid.pk, paid.status, invoice.status) == (attempt.pk, "SUCCEEDED", InvoiceStatus.PAID)
    charges = posts(stripe_api, INTENTS)
    assert len(charges) == 5 and len(accepted(charges)) == 1
    assert keys(charges) == {paid.idempotency_key}  # Stripe dedupes every try into the one charge
    assert (paid.failure_code, paid.failure_message) == ("", "")
    assert shown(staff_client, page.format(paid.pk), "status") == "Succeeded"
    assert shown(staff_client, page.format(paid.pk), "failure_message") == "-"


def test_staff_who_charge_a_card_during_a_stripe_outage_are_told_it_is_not_charged_yet(
    stripe_api,
    acme,
    alice,
    card,
    clock,
    staff_client,  # noqa: F811
):
    stripe_api.post(INTENTS, status=500, json=stripe_error("api_error", "Something went wrong on Stripe's end."))
    invoice = issue(acme)
    response = staff_client.post(
        "/admin/billing/invoice/", {"action": "charge", "_selected_action": [str(invoice.pk)]}, follow=True
    )
    page = response.content.decode()
    assert "0 invoice(s) charged." in page
    assert "not charged yet, asked again automatically: Stripe: Something went wrong on Stripe&#x27;s end." in page
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN and invoice.next_payment_at == NOW + timedelta(minutes=15)


def product(product_id: str) -> dict[str, Any]:
    return {"id": product_id, "object": "product", "active": True, "created": 1795000000, "livemode": False,
            "metadata": {}, "name": product_id, "type": "service"}  # fmt: skip


def session(session_id: str = "cs_test_a1B2c3") -> dict[str, Any]:
    return {"id": session_id, "object": "checkout.session", "mode": "subscription", "status": "open",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}", "livemode": False}  # fmt: skip


def test_a_quote_checkout_during_a_stripe_outage_is_retried_with_one_idempotency_key(
    stripe_api,
    quote,  # noqa: F811
    clock,
):
    stripe_api.get(re.compile(rf"{STRIPE}/v1/products/keel-[\w-]+"), json=product("keel-core_plus-base"))
    stripe_api.post(
        SESSIONS, status=429, json=stripe_error("invalid_request_error", "Too many requests.", "rate_limit")
    )
    stripe_api.post(SESSIONS, status=500, json=stripe_error("api_error", "Something went wrong on Stripe's end."))
    stripe_api.post(SESSIONS, body=requests.exceptions.ConnectionError("connection reset"))
    stripe_api.post(SESSIONS, json=session())
    payer = Client()

    refused = payer.post("/api/checkout", {"quote_key": quote.quote_key}, content_type="application/json")
    assert refused.status_code == 502 and "Too many requests." in refused.json()["detail"]

    again = payer.post("/api/checkout", {"quote_key": quote.quote_key}, content_type="application/json")
    assert again.status_code == 200
    assert again.json()["checkout_url"] == "https://checkout.stripe.com/c/pay/cs_test_a1B2c3"

    tries = posts(stripe_api, SESSIONS)
    assert len(tries) == 4 and len(accepted(tries)) == 1
    [key] = keys(tries)  # the click that failed and the retries of the next one are one session to Stripe
    assert key.startswith(f"keel-checkout-{quote.pk}-")


# ======================================================================================================================
# SendGrid (through anymail)
# ======================================================================================================================

SENDGRID_SEND = "https://api.sendgrid.com/v3/mail/send"


@pytest.fixture
def sendgrid(settings: Any) -> Iterator[RequestsMock]:
    settings.EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    settings.ANYMAIL = {"SENDGRID_API_KEY": "SG.test-key"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def email_alice(committed: Callable[..., Any], acme: Organization, alice: User) -> Delivery:
    notice = committed(lambda: notify(organization=acme, event_type="invoice.issued", context={}, users=[alice]))
    return Delivery.objects.get(notice=notice, channel="email")


def sendgrid_error(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "field": None, "help": None}]}


def test_sendgrid_500_timeout_and_429_are_retried_on_a_growing_backoff_and_the_email_is_sent_once(
    sendgrid,
    committed,
    acme,
    alice,
    clock,
    staff_client,  # noqa: F811
):
    sendgrid.post(SENDGRID_SEND, status=500, json=sendgrid_error("Internal server error"))
    sendgrid.post(SENDGRID_SEND, body=requests.exceptions.ConnectTimeout("connect timed out"))
    sendgrid.post(SENDGRID_SEND, status=429, json=sendgrid_error("too many requests"), headers={"Retry-After": "30"})
    sendgrid.post(SENDGRID_SEND, status=202, headers={"X-Message-Id": "sg-message-1"})

    delivery = email_alice(committed, acme, alice)
    page = f"/admin/notifications/delivery/{delivery.pk}/change/"
    expected = [
        'SendGrid answered 500: {"errors": [{"message": "Internal server error", "field": null, "help": null}]}',
        "SendGrid could not be reached: ConnectTimeout.",
        'SendGrid answered 429: {"errors": [{"message": "too many requests", "field": null, "help": null}]}',
    ]
    waits, at = walk_retries(delivery, expected, staff_client, page, clock)

    delivery.refresh_from_db()
    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30)]
    assert (delivery.status, delivery.attempts, delivery.sent_at, delivery.last_error) == (
        DeliveryStatus.SENT, 4, at, "",
    )  # fmt: skip
    sends = posts(sendgrid, SENDGRID_SEND)
    assert len(sends) == 4 and len(accepted(sends)) == 1
    sent = json.loads(sends[-1].request.body)
    assert sent["personalizations"][0]["to"] == [{"email": "alice@acme.test"}]
    assert sends[-1].request.headers["Authorization"] == "Bearer SG.test-key"
    assert (shown(staff_client, page, "status"), shown(staff_client, page, "last_error")) == ("Sent", "-")
    assert retry_due() == 0


def test_an_email_sendgrid_refuses_fails_at_once_with_its_words(sendgrid, committed, acme, alice, clock):
    sendgrid.post(SENDGRID_SEND, status=400, json=sendgrid_error("The from address does not match a verified Sender"))
    delivery = email_alice(committed, acme, alice)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.reason, delivery.attempts) == (DeliveryStatus.FAILED, Reason.REFUSED, 1)
    assert delivery.last_error.startswith("SendGrid answered 400: ")
    assert "does not match a verified Sender" in delivery.last_error
    clock.shift(timedelta(days=1))
    assert retry_due() == 0 and len(sendgrid.calls) == 1


def test_an_email_sendgrid_accepted_before_its_answer_timed_out_is_sent_again_as_the_same_message(
    sendgrid, committed, acme, alice, clock
):
    """SendGrid's v3 mail send takes no idempotency key and cannot be asked whether a message went out, so when it
    accepted the email but the answer was lost (a read timeout), the retry posts it again: the same email under the
    same Message-ID (the delivery's), which a mailbox that drops repeated Message-IDs shows once and every mail
    client threads as one message."""
    sendgrid.post(SENDGRID_SEND, body=requests.exceptions.ReadTimeout("read timed out"))
    sendgrid.post(SENDGRID_SEND, status=202)
    delivery = email_alice(committed, acme, alice)
    clock.shift(timedelta(seconds=RETRY_DELAYS[0]))
    assert retry_due() == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)
    first, second = (json.loads(call.request.body) for call in posts(sendgrid, SENDGRID_SEND))
    assert first["headers"]["Message-ID"] == f"<{delivery.pk}@keel.test>"
    for sent in (first, second):  # anymail tags each post with an id of its own; the email is the same
        sent["personalizations"][0].pop("custom_args")
    assert first == second


# ======================================================================================================================
# QuickBooks
# ======================================================================================================================

REALM = "9130355377531234"
QBO_API = f"https://sandbox-quickbooks.api.intuit.com/v3/company/{REALM}"
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"


@pytest.fixture
def intuit(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RequestsMock]:
    settings.QBO_PROVIDER = "quickbooks"
    settings.QBO_CLIENT_ID = "ABqbo-client-id"
    settings.QBO_CLIENT_SECRET = "qbo-client-secret"
    settings.QBO_ENVIRONMENT = "sandbox"
    monkeypatch.setattr(quickbooks_providers.get_provider, "instances", {})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def books(intuit: RequestsMock, clock: Any, acme: Organization, alice: User) -> QboConnection:
    """QuickBooks connected (an hour-long token with 50 minutes left), Acme already its customer 58, and the payments
    QuickBooks received (pulled by the same beat) none."""
    Organization.objects.filter(pk=acme.pk).update(qbo_customer_id="58")
    intuit.get(f"{QBO_API}/query", match=[selecting("Payment")], json={"QueryResponse": {}})
    intuit.post(TOKEN_URL, json={"token_type": "bearer", "access_token": "access-2", "refresh_token": "refresh-2",
                                 "expires_in": 3600, "x_refresh_token_expires_in": 8726400})  # fmt: skip
    return QboConnection.objects.create(
        realm_id=REALM,
        access_token_encrypted=encrypt("access-1"),
        refresh_token_encrypted=encrypt("refresh-1"),
        access_expires_at=NOW + timedelta(minutes=50),
        refresh_expires_at=NOW + timedelta(days=100),
        connected_at=NOW - timedelta(days=1),
        payments_pulled_through=NOW - timedelta(hours=1),
        default_item_id="1",
    )


def selecting(entity: str) -> Callable[[Any], tuple[bool, str]]:
    """A ``responses`` matcher for a QuickBooks query of ``entity``."""

    def match(request: Any) -> tuple[bool, str]:
        statement = parse_qs(urlsplit(request.url).query).get("query", [""])[0]
        return f"FROM {entity} " in statement, f"not a query of {entity}: {statement}"

    return match


def qbo_fault(code: str, message: str, kind: str) -> dict[str, Any]:
    return {"Fault": {"Error": [{"Message": message, "Detail": "", "code": code}], "type": kind}}


def invoice_creates(mock: RequestsMock) -> list[Any]:
    return [call for call in posts(mock, f"{QBO_API}/invoice") if "Id" not in json.loads(call.request.body)]


def test_quickbooks_500_429_and_a_lost_answer_are_retried_and_the_invoice_is_created_once(
    books,
    intuit,
    committed,
    acme,
    clock,
    staff_client,  # noqa: F811
):
    lookup = {"url": f"{QBO_API}/query", "match": [selecting("Invoice")]}
    intuit.get(**lookup, status=500, json=qbo_fault("10000", "An application error has occurred", "SystemFault"))
    intuit.get(**lookup, status=429, json=qbo_fault("003001", "ThrottleExceeded", "SERVICE"),
               headers={"Retry-After": "60"})  # fmt: skip
    intuit.get(**lookup, json={"QueryResponse": {}})  # not there yet: it is created, but the answer is lost
    intuit.post(f"{QBO_API}/invoice", body=requests.exceptions.ReadTimeout("read timed out (read timeout=30.0)"))
    # QuickBooks did create it: the next lookup by its number finds it, and it is updated.
    intuit.get(**lookup, json={"QueryResponse": {"Invoice": [{"Id": "130", "DocNumber": "INV-00001"}]}})
    intuit.get(f"{QBO_API}/invoice/130", json={"Invoice": {"Id": "130", "SyncToken": "0"}})
    intuit.post(f"{QBO_API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "1"}})

    invoice = committed(lambda: issue(acme))  # finalizing it queues the push (customer 58 is known)
    assert invoice.reference == "INV-00001"
    row = QboSync.objects.get(kind=SyncKind.INVOICE, object_id=str(invoice.pk))
    page = f"/admin/quickbooks/qbosync/{row.pk}/change/"
    expected = [
        "QuickBooks is unavailable (An application error has occurred).",
        "QuickBooks is unavailable (ThrottleExceeded).",
        "QuickBooks did not answer in time.",
    ]
    at = NOW
    for attempt, error in enumerate(expected, start=1):
        row.refresh_from_db()
        wait = BACKOFF[attempt - 1]
        assert (row.state, row.attempts, row.last_error, row.next_attempt_at) == (
            SyncState.RETRYING, attempt, error, at + wait,
        )  # fmt: skip
        assert shown(staff_client, page, "state") == "Failed, will retry"
        assert shown(staff_client, page, "last_error") == error
        clock.shift(wait - timedelta(seconds=1))
        assert sync_due()["pushed"] == 0  # not before its time
        clock.shift(timedelta(seconds=1))
        at += wait
        assert sync_due()["pushed"] == (1 if attempt == len(expected) else 0)

    row.refresh_from_db()
    assert [wait.total_seconds() for wait in BACKOFF[:3]] == [60, 300, 1800]
    assert (row.state, row.qbo_id, row.attempts, row.last_error) == (SyncState.SUCCEEDED, "130", 4, "")
    assert len(invoice_creates(intuit)) == 1  # the one whose answer was lost; the retry updated it
    update = json.loads(posts(intuit, f"{QBO_API}/invoice")[-1].request.body)
    assert (update["Id"], update["SyncToken"], update["sparse"], update["DocNumber"]) == (
        "130", "0", True, invoice.reference,
    )  # fmt: skip
    assert (shown(staff_client, page, "state"), shown(staff_client, page, "last_error")) == ("Succeeded", "-")


def test_quickbooks_failing_on_every_try_waits_1_min_5_min_30_min_2_h_6_h_then_gives_up(
    books,
    intuit,
    committed,
    acme,
    clock,
    staff,  # noqa: F811
):
    lookup = {"url": f"{QBO_API}/query", "match": [selecting("Invoice")]}
    failures: list[dict[str, Any]] = [
        {"status": 503, "json": qbo_fault("10000", "An application error has occurred", "SystemFault")},
        {"status": 429, "json": qbo_fault("003001", "ThrottleExceeded", "SERVICE"), "headers": {"Retry-After": "60"}},
        {"body": requests.exceptions.ConnectTimeout("connect timed out")},
    ]
    for failure in failures * 2:
        intuit.get(**lookup, **failure)

    invoice = committed(lambda: issue(acme))
    row = QboSync.objects.get(kind=SyncKind.INVOICE, object_id=str(invoice.pk))
    waits = []
    at = NOW
    for _ in BACKOFF:
        row.refresh_from_db()
        assert row.state == SyncState.RETRYING
        waits.append(row.next_attempt_at - at)
        clock.shift(waits[-1])
        at += waits[-1]
        sync_due()

    assert waits == [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                     timedelta(hours=6)]  # fmt: skip
    row.refresh_from_db()
    assert (row.state, row.attempts, row.last_error) == (SyncState.FAILED, 6, "QuickBooks did not answer in time.")
    page = f"/admin/quickbooks/qbosync/{row.pk}/change/"
    signed_in = admin_client(staff)  # signed in now: a staff session ends after two idle hours
    assert (shown(signed_in, page, "state"), shown(signed_in, page, "last_error")) == (
        "Gave up", "QuickBooks did not answer in time.",
    )  # fmt: skip
    clock.shift(timedelta(days=1))
    sync_due()
    assert not posts(intuit, f"{QBO_API}/invoice")  # nothing was created, and nothing is tried any more
    lookups = [call for call in intuit.calls if selecting("Invoice")(call.request)[0]]
    assert len(lookups) == len(BACKOFF) + 1
    assert len(posts(intuit, TOKEN_URL)) >= 1  # the hour-long token was refreshed along the way
