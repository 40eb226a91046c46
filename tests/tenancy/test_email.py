"""Transactional email: rendered after commit with branding, sent through anymail's SendGrid backend."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests
import responses
from anymail.exceptions import AnymailAPIError
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.test import override_settings

from tenancy.emails import email_send, message_id, render_email
from tenancy.tasks import EMAIL_RETRY_DELAYS, send_email

pytestmark = pytest.mark.django_db

SENDGRID_SEND = "https://api.sendgrid.com/v3/mail/send"


@responses.activate
@override_settings(EMAIL_BACKEND="anymail.backends.sendgrid.EmailBackend", ANYMAIL={"SENDGRID_API_KEY": "SG.test"})
def test_sendgrid_backend_posts_the_message():
    responses.post(SENDGRID_SEND, status=202, headers={"X-Message-Id": "msg-1"})
    send_email(recipients=["alice@acme.test"], subject="Hello", text="Plain body", html="<p>HTML body</p>")
    [call] = responses.calls
    assert call.request.headers["Authorization"] == "Bearer SG.test"
    raw_body = call.request.body
    assert isinstance(raw_body, bytes | str)
    body = json.loads(raw_body)
    assert body["personalizations"][0]["to"] == [{"email": "alice@acme.test"}]
    assert body["subject"] == "Hello"
    assert {c["type"]: c["value"] for c in body["content"]} == {
        "text/plain": "Plain body",
        "text/html": "<p>HTML body</p>",
    }


INVITATION = {
    "organization_name": "Acme",
    "inviter": "Alice",
    "role": "Member",
    "path": "/invite/abc/",
    "expires_at": None,
}
SENDGRID = override_settings(
    EMAIL_BACKEND="anymail.backends.sendgrid.EmailBackend", ANYMAIL={"SENDGRID_API_KEY": "SG.test"}
)


def sent_bodies() -> list[dict[str, Any]]:
    bodies = [call.request.body for call in responses.calls if call.request.url == SENDGRID_SEND]
    return [json.loads(body) for body in bodies if isinstance(body, str | bytes)]


@responses.activate
@SENDGRID
def test_a_refusal_that_would_be_refused_again_is_not_retried_and_fails_with_the_providers_words(caplog):
    responses.post(SENDGRID_SEND, status=400, json={"errors": [{"message": "bad from"}]})
    with pytest.raises(AnymailAPIError):
        send_email.apply(
            kwargs={"recipients": ["alice@acme.test"], "subject": "s", "text": "t", "html": "h"}, throw=True
        )
    assert len(responses.calls) == 1
    assert 'SendGrid answered 400: {"errors": [{"message": "bad from"}]}' in caplog.text


@responses.activate
@SENDGRID
def test_a_500_and_a_lost_answer_are_retried_and_every_try_is_the_same_message(
    acme, django_capture_on_commit_callbacks
):
    """The Message-ID is made once, when the email is queued: a retry after SendGrid accepted the email but its answer
    was lost (a read timeout) posts the same message, which mailboxes that drop repeated Message-IDs show once."""
    responses.post(SENDGRID_SEND, status=500, json={"errors": [{"message": "try later"}]})
    responses.post(SENDGRID_SEND, body=requests.exceptions.ReadTimeout("read timed out"))
    responses.post(SENDGRID_SEND, status=202)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        email_send(to="alice@acme.test", template="invitation", context=INVITATION, organization=acme)
    bodies = sent_bodies()
    assert len(bodies) == 3
    ids = {body["headers"]["Message-ID"] for body in bodies}
    assert len(ids) == 1 and re.fullmatch(r"<[0-9a-f]{32}@keel\.test>", ids.pop())
    for body in bodies:  # anymail tags each post with an id of its own; the email is the same
        body["personalizations"][0].pop("custom_args")
    assert bodies[0] == bodies[1] == bodies[2]


@responses.activate
@SENDGRID
def test_a_rate_limit_waits_for_the_providers_retry_after_when_it_is_longer_than_the_backoff(monkeypatch):
    responses.post(
        SENDGRID_SEND, status=429, json={"errors": [{"message": "slow down"}]}, headers={"Retry-After": "900"}
    )
    responses.post(SENDGRID_SEND, status=503, json={"errors": [{"message": "down"}]}, headers={"Retry-After": "5"})
    responses.post(SENDGRID_SEND, status=202)
    waits: list[float] = []
    retry = send_email.retry

    def recorded(*args: Any, **kwargs: Any) -> Any:
        waits.append(kwargs["countdown"])
        return retry(*args, **kwargs)

    monkeypatch.setattr(send_email, "retry", recorded)
    result = send_email.apply(kwargs={"recipients": ["alice@acme.test"], "subject": "s", "text": "t", "html": "h"})
    assert result.successful()
    assert waits == [900, EMAIL_RETRY_DELAYS[1]]  # the 429's 15 minutes; the 503's 5 s is shorter than the backoff
    assert len(responses.calls) == 3


@responses.activate
@SENDGRID
def test_an_email_still_refused_after_the_last_retry_fails():
    for _ in range(len(EMAIL_RETRY_DELAYS) + 1):
        responses.post(SENDGRID_SEND, status=502, json={"errors": [{"message": "bad gateway"}]})
    result = send_email.apply(kwargs={"recipients": ["alice@acme.test"], "subject": "s", "text": "t", "html": "h"})
    assert result.failed() and isinstance(result.result, AnymailAPIError)
    assert len(responses.calls) == len(EMAIL_RETRY_DELAYS) + 1


def test_every_email_carries_a_message_id_on_the_sending_domain(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        email_send(to="alice@acme.test", template="invitation", context=INVITATION, organization=acme)
        email_send(to="bob@acme.test", template="invitation", context=INVITATION, organization=acme)
    first, second = (message.message()["Message-ID"] for message in mail.outbox)
    assert first != second
    assert re.fullmatch(r"<[0-9a-f]{32}@keel\.test>", first)
    assert message_id("5f0c") == "<5f0c@keel.test>"


def test_email_is_sent_only_after_commit_and_carries_branding(acme, django_capture_on_commit_callbacks):
    acme.brand_display_name = "Acme IT Desk"
    acme.brand_primary_color = "#123456"
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        email_send(
            to="bob@acme.test",
            template="invitation",
            organization=acme,
            context={
                "organization_name": "Acme IT Desk",
                "inviter": "Alice",
                "role": "Member",
                "path": "/invite/abc/",
                "expires_at": None,
            },
        )
        assert mail.outbox == []
    [message] = mail.outbox
    assert isinstance(message, EmailMultiAlternatives)
    assert message.to == ["bob@acme.test"]
    html = str(message.alternatives[0][0])
    assert "Acme IT Desk" in html and "#123456" in html
    assert "/invite/abc/" in message.body


def test_rolled_back_write_sends_nothing(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        email_send(
            to="bob@acme.test",
            template="invitation",
            organization=acme,
            context={"organization_name": "Acme", "inviter": "A", "role": "Member", "path": "/x/", "expires_at": None},
        )
        raise RuntimeError("rolled back")
    assert mail.outbox == []


def test_render_without_organization_uses_keel_branding():
    message = render_email(
        "invitation",
        {"organization_name": "X", "inviter": "Y", "role": "Member", "path": "/p/", "expires_at": None},
        None,
    )
    assert "Keel" in message["html"]
