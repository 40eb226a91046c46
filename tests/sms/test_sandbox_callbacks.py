"""The sandbox's status callbacks, posted over HTTP (recorded with ``responses``) and handed to the real webhook
through the test client: signed as Twilio signs, they take each job to the fate the sandbox picked for its message."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from django.test import Client

from sms.models import Campaign, JobState, SendJob, StatusCallback
from sms.providers.base import OutboundMessage
from sms.providers.sandbox import FAILED_CODE, UNDELIVERED_CODE, SandboxProvider, outcome
from sms.sandbox_callbacks import post_callbacks, status_callback_url
from sms.services.contacts import contact_create
from sms.signatures import signature_valid

pytestmark = pytest.mark.django_db

TOKEN = "keel-sandbox-twilio-token"
ACCOUNT = "AC" + "0" * 32
SITE = "http://127.0.0.1:8000"
URL = SITE + "/webhooks/twilio/status/"
FROM = "+61480000001"
SENT_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _sandbox(settings: Any) -> Iterator[None]:
    settings.SMS_PROVIDER = "sandbox"
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_ACCOUNT_SID = ACCOUNT
    settings.SITE_URL = SITE
    SandboxProvider.reset()
    yield
    SandboxProvider.reset()


def hex_with(final_status: str, start: int = 0) -> str:
    """The hex part of a sid (``SM`` + 32 hex digits) whose message the sandbox gives ``final_status``."""
    return next(f"{i:032x}" for i in range(start, 10_000) if outcome(f"SM{i:032x}")[0] == final_status)


@pytest.fixture
def jobs(acme: Any, monkeypatch: Any) -> dict[str, SendJob]:
    """One sent job per fate: its message sent through the sandbox, which picked a sid with that fate."""
    fates = ("delivered", "undelivered", "failed")
    chosen = iter([hex_with(fate) for fate in fates])
    monkeypatch.setattr("sms.providers.sandbox.secrets", SimpleNamespace(token_hex=lambda _: next(chosen)))
    campaign = Campaign.objects.create(organization=acme, name="Autumn sale")
    made = {}
    for position, fate in enumerate(fates):
        contact = contact_create(organization=acme, phone=f"+6141234567{position}")
        state = SandboxProvider().send(OutboundMessage(to=contact.phone_e164, from_=FROM, body="Acme: hi. Reply STOP"))
        made[fate] = SendJob.objects.create(
            organization=acme,
            campaign=campaign,
            contact=contact,
            position=position,
            state=JobState.SENT,
            provider_sid=state.sid,
            sent_at=SENT_AT,
        )
    return made


@pytest.fixture
def webhook(client: Client) -> Iterator[responses.RequestsMock]:
    """Every POST to the status URL is answered by the real view, through the test client."""

    def forward(request: Any) -> tuple[int, dict[str, str], bytes]:
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        answer = client.post(
            "/webhooks/twilio/status/",
            body,
            content_type=request.headers["Content-Type"],
            HTTP_X_TWILIO_SIGNATURE=request.headers.get("X-Twilio-Signature", ""),
        )
        return answer.status_code, {}, answer.content

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, URL, callback=forward)
        yield mock


def test_the_status_callback_url_is_the_public_address(settings):
    assert status_callback_url() == URL
    settings.SITE_URL = "https://keel.example.com/"
    assert status_callback_url() == "https://keel.example.com/webhooks/twilio/status/"


def test_callbacks_take_every_job_to_the_fate_the_sandbox_picked(webhook, jobs):
    sids = [job.provider_sid for job in jobs.values()]

    assert post_callbacks(sids) == 6

    for fate, job in jobs.items():
        job.refresh_from_db()
        assert outcome(job.provider_sid)[0] == fate
    delivered, undelivered, failed = jobs["delivered"], jobs["undelivered"], jobs["failed"]
    assert (delivered.state, delivered.error_code) == (JobState.DELIVERED, "")
    assert delivered.delivered_at is not None
    assert (undelivered.state, undelivered.error_code, undelivered.delivered_at) == (
        JobState.FAILED,
        UNDELIVERED_CODE,
        None,
    )
    assert (failed.state, failed.error_code, failed.delivered_at) == (JobState.FAILED, FAILED_CODE, None)
    assert sorted(StatusCallback.objects.values_list("sid", "status")) == sorted(
        [(sid, "sent") for sid in sids] + [(sid, outcome(sid)[0]) for sid in sids]
    )
    # Each request is what Twilio would send: form-encoded, signed for the public URL, sent before the final status.
    posted = [dict(parse_qsl(call.request.body)) for call in webhook.calls]
    assert [(form["MessageSid"], form["MessageStatus"]) for form in posted] == [
        pair for sid in sids for pair in ((sid, "sent"), (sid, outcome(sid)[0]))
    ]
    for call, form in zip(webhook.calls, posted, strict=True):
        assert call.request.url == URL
        assert signature_valid(URL, form, call.request.headers["X-Twilio-Signature"], TOKEN)
        assert form["AccountSid"] == ACCOUNT


def test_posting_again_changes_nothing(webhook, jobs):
    sid = jobs["delivered"].provider_sid
    assert post_callbacks([sid]) == 2
    first = SendJob.objects.get(provider_sid=sid).delivered_at
    assert post_callbacks([sid]) == 2  # answered 200, applied no second time
    assert SendJob.objects.get(provider_sid=sid).delivered_at == first
    assert StatusCallback.objects.filter(sid=sid).count() == 2


def test_a_sid_the_sandbox_does_not_know_is_skipped(webhook, jobs):
    assert post_callbacks(["SM" + "f" * 32]) == 0
    assert len(webhook.calls) == 0


def test_a_server_that_cannot_be_reached_is_logged_and_skipped(jobs, caplog):
    sids = [jobs["delivered"].provider_sid, jobs["failed"].provider_sid]
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="sms.sandbox_callbacks"):
        mock.add(responses.POST, URL, body=requests.ConnectionError("connection refused"))
        assert post_callbacks(sids) == 0
        assert len(mock.calls) == 4
    assert caplog.text.count("could not post") == 4
    assert f"could not post sent callback for {sids[0]}: connection refused" in caplog.text
    assert SendJob.objects.filter(state=JobState.SENT).count() == 3


def test_a_refused_callback_is_logged_and_not_counted(jobs, caplog, settings):
    sid = jobs["delivered"].provider_sid
    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="sms.sandbox_callbacks"):
        mock.add(responses.POST, URL, status=403)
        mock.add(responses.POST, URL, status=200)
        assert post_callbacks([sid]) == 1
    assert f"sent callback for {sid} answered 403" in caplog.text


def test_a_callback_signed_with_another_token_is_refused_by_the_webhook(client, jobs, settings, caplog):
    # The sandbox signs with the token it is configured with; a webhook checking another one refuses the callbacks
    # (403, counted as not accepted) and nothing changes.
    sid = jobs["delivered"].provider_sid

    def forward_to_a_webhook_with_another_token(request: Any) -> tuple[int, dict[str, str], bytes]:
        settings.TWILIO_AUTH_TOKEN = "rotated-token"
        answer = client.post(
            "/webhooks/twilio/status/",
            request.body,
            content_type=request.headers["Content-Type"],
            HTTP_X_TWILIO_SIGNATURE=request.headers["X-Twilio-Signature"],
        )
        settings.TWILIO_AUTH_TOKEN = TOKEN
        return answer.status_code, {}, answer.content

    with responses.RequestsMock() as mock, caplog.at_level(logging.WARNING, logger="sms.sandbox_callbacks"):
        mock.add_callback(responses.POST, URL, callback=forward_to_a_webhook_with_another_token)
        assert post_callbacks([sid]) == 0
    assert f"delivered callback for {sid} answered 403" in caplog.text
    assert SendJob.objects.get(provider_sid=sid).state == JobState.SENT
    assert not StatusCallback.objects.exists()
