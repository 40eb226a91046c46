"""POST /webhooks/twilio/status/: Twilio's signature (behind a proxy and direct), one application per (sid, status),
states that never move backwards, failures with their error code, numbers that bounce or unsubscribed put on the
do-not-contact list, prices, unknown messages, and concurrent repeats."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection
from django.test import Client

from sms.models import (
    Campaign,
    ConsentEvent,
    ConsentKind,
    Contact,
    DoNotContact,
    JobState,
    SendJob,
    StatusCallback,
)
from sms.services.callbacks import Outcome, status_apply
from sms.services.contacts import contact_create
from sms.signatures import twilio_signature
from tenancy.errors import ServiceValidationError
from tests.helpers import race

pytestmark = pytest.mark.django_db

TOKEN = "test-twilio-auth-token"
SITE = "https://keel.example.com"
PATH = "/webhooks/twilio/status/"
ACCOUNT = "AC" + "1" * 32
SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 2, 9, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _twilio(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.SITE_URL = SITE


def params(sid: str | None, status: str, **extra: str) -> dict[str, str]:
    sid = sid or ""
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT,
        "From": "+61480000001",
        "To": "+61412345678",
        "ApiVersion": "2010-04-01",
        "MessageStatus": status,
        "SmsStatus": status,
        **extra,
    }


def deliver(
    client: Client,
    form: dict[str, str],
    *,
    path: str = PATH,
    signed_url: str | None = None,
    token: str = TOKEN,
    signature: str | None = None,
    body: str | None = None,
) -> Any:
    """POST ``form`` as Twilio does (form-encoded), signed for ``signed_url`` (the public URL by default)."""
    if signature is None:
        signature = twilio_signature(signed_url or SITE + path, form, token)
    headers: dict[str, Any] = {"HTTP_X_TWILIO_SIGNATURE": signature} if signature else {}
    raw = urlencode(form) if body is None else body
    return client.post(path, raw, content_type="application/x-www-form-urlencoded", **headers)


def make_job(organization: Any, phone: str, sid: str, state: str = JobState.SENT, **fields: Any) -> SendJob:
    contact = Contact.objects.for_org(organization).filter(phone_e164=phone).first() or contact_create(
        organization=organization, phone=phone
    )
    campaign = Campaign.objects.for_org(organization).first() or Campaign.objects.create(
        organization=organization, name="Autumn sale"
    )
    return SendJob.objects.create(
        organization=organization,
        campaign=campaign,
        contact=contact,
        state=state,
        provider_sid=sid,
        sent_at=SENT_AT if state != JobState.SENDING else None,
        body="Acme Pty Ltd: 20% off. Reply STOP to opt out",
        **fields,
    )


@pytest.fixture
def job(acme: Any) -> SendJob:
    return make_job(acme, "+61412345678", "SM" + "a" * 32)


def test_sent_then_delivered_moves_the_job_and_answers_200_with_an_empty_body(client, job):
    with time_machine.travel(LATER, tick=False):
        response = deliver(client, params(job.provider_sid, "sent"))
        assert (response.status_code, response.content) == (200, b"")
        job.refresh_from_db()
        assert (job.state, job.sent_at, job.delivered_at) == (JobState.SENT, SENT_AT, None)

        response = deliver(client, params(job.provider_sid, "delivered"))
    assert (response.status_code, response.content) == (200, b"")
    job.refresh_from_db()
    assert (job.state, job.sent_at, job.delivered_at, job.error_code) == (JobState.DELIVERED, SENT_AT, LATER, "")
    assert sorted(StatusCallback.objects.values_list("sid", "status")) == [
        (job.provider_sid, "delivered"),
        (job.provider_sid, "sent"),
    ]


def test_read_counts_as_delivered(client, job):
    with time_machine.travel(LATER, tick=False):
        assert deliver(client, params(job.provider_sid, "read")).status_code == 200
    job.refresh_from_db()
    assert (job.state, job.delivered_at) == (JobState.DELIVERED, LATER)


@pytest.mark.parametrize("status", ["queued", "accepted", "sending", "sent"])
def test_a_job_still_sending_is_sent_once_twilio_reports_the_message(client, acme, status):
    job = make_job(acme, "+61412345670", "SM" + "c" * 32, state=JobState.SENDING, lease_until=SENT_AT)
    with time_machine.travel(LATER, tick=False):
        assert deliver(client, params(job.provider_sid, status)).status_code == 200
    job.refresh_from_db()
    assert (job.state, job.sent_at, job.lease_until) == (JobState.SENT, LATER, None)


@pytest.mark.parametrize(
    "tamper", ["wrong_token", "no_header", "empty_header", "param_changed", "other_host", "repeated_param"]
)
def test_a_bad_or_missing_signature_is_403_and_changes_nothing(client, job, tamper):
    form = params(job.provider_sid, "delivered")
    good = twilio_signature(SITE + PATH, form, TOKEN)
    if tamper == "wrong_token":
        response = deliver(client, form, token="not-the-token")
    elif tamper in ("no_header", "empty_header"):
        response = client.post(
            PATH,
            urlencode(form),
            content_type="application/x-www-form-urlencoded",
            **({} if tamper == "no_header" else {"HTTP_X_TWILIO_SIGNATURE": ""}),
        )
    elif tamper == "param_changed":
        response = deliver(client, form, signature=good, body=urlencode({**form, "MessageStatus": "failed"}))
    elif tamper == "other_host":
        response = deliver(client, form, signed_url="https://attacker.example.com" + PATH)
    else:  # the signed form plus a second value for one of its names
        response = deliver(client, form, signature=good, body=urlencode(form) + "&MessageStatus=failed")
    assert response.status_code == 403
    job.refresh_from_db()
    assert (job.state, job.delivered_at) == (JobState.SENT, None)
    assert not StatusCallback.objects.exists()


def test_without_an_auth_token_every_callback_is_refused(client, job, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    response = deliver(client, params(job.provider_sid, "delivered"), token="")
    assert response.status_code == 403
    assert not StatusCallback.objects.exists()


@pytest.mark.parametrize(
    ("path", "signed_url"),
    [
        # Behind a proxy: Twilio signed the public address, the server sees http://testserver.
        (PATH, SITE + PATH),
        (PATH + "?attempt=2", SITE + PATH + "?attempt=2"),
        ("/webhooks/twilio/status", SITE + "/webhooks/twilio/status"),
        # Twilio sometimes writes the default port out.
        (PATH, "https://keel.example.com:443" + PATH),
        # Reached directly: the request's own absolute URL.
        (PATH, "http://testserver" + PATH),
        (PATH + "?attempt=2", "http://testserver" + PATH + "?attempt=2"),
    ],
)
def test_the_public_url_and_the_direct_url_are_both_accepted(client, job, path, signed_url):
    response = deliver(client, params(job.provider_sid, "delivered"), path=path, signed_url=signed_url)
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED


def test_a_signature_without_the_query_string_does_not_pass(client, job):
    response = deliver(client, params(job.provider_sid, "delivered"), path=PATH + "?attempt=2", signed_url=SITE + PATH)
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.SENT


def test_a_repeated_callback_answers_200_and_changes_nothing(client, job):
    with time_machine.travel(LATER, tick=False):
        assert deliver(client, params(job.provider_sid, "delivered")).status_code == 200
    with time_machine.travel(LATER + timedelta(minutes=5), tick=False):
        response = deliver(client, params(job.provider_sid, "delivered", Price="-0.00790"))
        assert status_apply(params(job.provider_sid, "delivered")).outcome == Outcome.DUPLICATE
    assert (response.status_code, response.content) == (200, b"")
    job.refresh_from_db()
    assert (job.state, job.delivered_at, job.provider_price) == (JobState.DELIVERED, LATER, None)
    assert StatusCallback.objects.count() == 1


@pytest.mark.parametrize("late", ["sent", "queued", "sending", "failed", "undelivered"])
def test_a_late_callback_never_moves_a_delivered_job_back(client, job, late):
    with time_machine.travel(LATER, tick=False):
        deliver(client, params(job.provider_sid, "delivered"))
    response = deliver(client, params(job.provider_sid, late, ErrorCode="30003"))
    assert response.status_code == 200
    job.refresh_from_db()
    assert (job.state, job.delivered_at, job.error_code) == (JobState.DELIVERED, LATER, "")
    assert StatusCallback.objects.count() == 2  # recorded, so its repeat is a duplicate too


def test_delivered_after_failed_leaves_the_job_failed(client, job):
    deliver(client, params(job.provider_sid, "undelivered", ErrorCode="30003"))
    deliver(client, params(job.provider_sid, "delivered"))
    job.refresh_from_db()
    assert (job.state, job.error_code, job.delivered_at) == (JobState.FAILED, "30003", None)


@pytest.mark.parametrize(("status", "code"), [("undelivered", "30003"), ("failed", "30008"), ("failed", "")])
def test_a_failure_stores_the_error_code_and_leaves_the_number_contactable(client, job, acme, status, code):
    form = params(job.provider_sid, status, **({"ErrorCode": code} if code else {}))
    assert deliver(client, form).status_code == 200
    job.refresh_from_db()
    assert (job.state, job.error_code, job.delivered_at) == (JobState.FAILED, code, None)
    assert not DoNotContact.objects.for_org(acme).exists()


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [("failed", "21610", "stop_keyword"), ("undelivered", "30005", "bounced"), ("undelivered", "30006", "bounced")],
)
def test_an_unsubscribed_unknown_or_landline_number_goes_on_the_dnc_list(
    client, job, acme, globex, status, code, reason
):
    assert deliver(client, params(job.provider_sid, status, ErrorCode=code)).status_code == 200
    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, code)
    entry = DoNotContact.objects.for_org(acme).get()
    assert (entry.phone_e164, entry.reason, entry.source) == (
        "+61412345678",
        reason,
        f"Twilio error {code} on {job.provider_sid}",
    )
    assert list(ConsentEvent.objects.for_org(acme).values_list("kind", "contact")) == [
        (ConsentKind.DNC_ADDED, job.contact_id)
    ]
    assert not DoNotContact.objects.for_org(globex).exists()


def test_the_price_is_stored_as_a_positive_amount(client, job):
    with time_machine.travel(LATER, tick=False):
        deliver(client, params(job.provider_sid, "sent"))
        deliver(client, params(job.provider_sid, "delivered", Price="-0.00790", PriceUnit="USD"))
    job.refresh_from_db()
    assert (job.state, job.provider_price) == (JobState.DELIVERED, Decimal("0.0079"))


def test_a_price_reported_by_a_late_callback_is_still_recorded(client, job):
    deliver(client, params(job.provider_sid, "delivered"))
    result = status_apply(params(job.provider_sid, "sent", Price="0.0415"))
    assert (result.outcome, result.state) == (Outcome.APPLIED, JobState.DELIVERED)
    job.refresh_from_db()
    assert (job.state, job.provider_price) == (JobState.DELIVERED, Decimal("0.0415"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Price": "free"}, "Price"),
        ({"Price": "NaN"}, "Price"),
        ({"Price": "-12345678"}, "Price"),
        ({"MessageStatus": "", "SmsStatus": ""}, "MessageStatus"),
        ({"MessageSid": "", "SmsSid": ""}, "MessageSid"),
        ({"ErrorCode": "3" * 21}, "ErrorCode"),
    ],
)
def test_a_signed_callback_with_an_unusable_parameter_is_400_naming_it(client, job, change, field):
    response = deliver(client, {**params(job.provider_sid, "delivered"), **change})
    assert response.status_code == 400
    assert list(response.json()) == [field]
    job.refresh_from_db()
    assert (job.state, job.provider_price) == (JobState.SENT, None)
    assert not StatusCallback.objects.exists()


def test_an_unknown_sid_is_200_logged_and_stores_nothing(client, job, caplog):
    with caplog.at_level(logging.WARNING, logger="sms.services.callbacks"):
        response = deliver(client, params("SM" + "f" * 32, "delivered"))
    assert (response.status_code, response.content) == (200, b"")
    assert "unknown message SM" + "f" * 32 in caplog.text
    assert not StatusCallback.objects.exists()
    job.refresh_from_db()
    assert job.state == JobState.SENT


def test_an_unknown_status_is_recorded_and_changes_nothing(client, job):
    result = status_apply(params(job.provider_sid, "partially_delivered"))
    assert (result.outcome, result.state) == (Outcome.UNCHANGED, JobState.SENT)
    assert StatusCallback.objects.get().status == "partially_delivered"


def test_status_apply_names_the_missing_parameter():
    with pytest.raises(ServiceValidationError) as bad:
        status_apply({"MessageStatus": "sent"})
    assert bad.value.message_dict == {"MessageSid": ["Required."]}


def test_only_post_is_served(client, job):
    assert client.get(PATH).status_code == 405
    assert client.put(PATH).status_code == 405


@pytest.mark.isolation("sms-twilio-status")
def test_the_webhook_is_twilios_alone_and_reveals_nothing(client, alice, acme, globex, job):
    # Not a tenant route: a session changes nothing, a callback names its message by the sid Twilio gave it, and the
    # answer is the same empty 200 whether the sid is Globex's, Acme's or nobody's, so nothing can be probed.
    other = make_job(globex, "+61412345678", "SM" + "b" * 32)
    client.force_login(alice)
    answers = [
        deliver(client, params(sid, "delivered")) for sid in (other.provider_sid, job.provider_sid, "SM" + "0" * 32)
    ]
    assert [(answer.status_code, answer.content) for answer in answers] == [(200, b"")] * 3
    other.refresh_from_db()
    job.refresh_from_db()
    assert (other.organization_id, other.state) == (globex.pk, JobState.DELIVERED)
    assert (job.organization_id, job.state) == (acme.pk, JobState.DELIVERED)
    # A failure that puts a number on the list puts it on the list of the job's organization only.
    third = make_job(globex, "+61412345679", "SM" + "d" * 32)
    deliver(client, params(third.provider_sid, "failed", ErrorCode="21610"))
    assert list(DoNotContact.objects.values_list("organization__slug", "phone_e164")) == [("globex", "+61412345679")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_callback_apply_it_once(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    job = make_job(acme, "+61412345678", "SM" + "e" * 32)
    form = params(job.provider_sid, "failed", ErrorCode="21610")

    outcomes = race(lambda: status_apply(form).outcome, 4)

    assert sorted(outcomes) == sorted([Outcome.APPLIED] + [Outcome.DUPLICATE] * 3)
    job.refresh_from_db()
    assert (job.state, job.error_code) == (JobState.FAILED, "21610")
    assert StatusCallback.objects.count() == 1
    assert DoNotContact.objects.for_org(acme).count() == 1
    assert ConsentEvent.objects.for_org(acme).filter(kind=ConsentKind.DNC_ADDED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_callbacks_of_one_message_through_the_webhook_end_delivered(acme):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    job = make_job(acme, "+61412345678", "SM" + "9" * 32)
    forms = iter([params(job.provider_sid, "sent"), params(job.provider_sid, "delivered")] * 2)

    def post() -> int:
        form = next(forms)
        return deliver(Client(), form).status_code

    assert race(post, 4) == [200, 200, 200, 200]
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED
    assert sorted(StatusCallback.objects.values_list("status", flat=True)) == ["delivered", "sent"]


def test_the_form_is_read_as_django_reads_it(client, job):
    form = params(job.provider_sid, "delivered", ErrorMessage="Café \u2013 ok")
    assert deliver(client, form).status_code == 200  # UTF-8, percent-encoded
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED


def test_a_multipart_callback_is_read_too(client, job):
    form = params(job.provider_sid, "delivered")
    signature = twilio_signature(SITE + PATH, form, TOKEN)
    assert client.post(PATH, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200  # multipart/form-data
    job.refresh_from_db()
    assert job.state == JobState.DELIVERED


def test_too_many_fields_are_a_400(client, job, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    response = deliver(client, params(job.provider_sid, "delivered"))
    assert response.status_code == 400
    job.refresh_from_db()
    assert job.state == JobState.SENT
