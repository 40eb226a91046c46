"""Transactional email: rendered after commit with branding, sent through anymail's SendGrid backend."""

from __future__ import annotations

import json

import pytest
import responses
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.test import override_settings

from tenancy.emails import email_send, render_email
from tenancy.tasks import send_email

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


@responses.activate
@override_settings(EMAIL_BACKEND="anymail.backends.sendgrid.EmailBackend", ANYMAIL={"SENDGRID_API_KEY": "SG.test"})
def test_sendgrid_rejection_raises_so_the_task_retries():
    from anymail.exceptions import AnymailAPIError

    responses.post(SENDGRID_SEND, status=400, json={"errors": [{"message": "bad from"}]})
    with pytest.raises(AnymailAPIError):
        send_email.run(recipients=["alice@acme.test"], subject="s", text="t", html="h")


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
