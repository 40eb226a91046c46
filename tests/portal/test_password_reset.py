"""Password reset through Django's views with our branded email; no user enumeration."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse

from tenancy.models import AuditEvent
from tests.portal.conftest import html_of

pytestmark = pytest.mark.django_db

RESET = "/password-reset/"
NEW_PASSWORD = "a-brand-new-passphrase-42"


def reset_path(message) -> str:
    match = re.search(r"https?://[^/\s]+(/password-reset/[\w-]+/[\w-]+/)", str(message.body))
    assert match, message.body
    return match.group(1)


@pytest.mark.isolation("portal:password_reset")
def test_known_and_unknown_addresses_get_the_same_answer(
    client, alice, carol, globex, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(RESET, {"email": alice.email})
        unknown = client.post(RESET, {"email": "nobody@acme.test"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == reverse("portal:password_reset_done")
    [message] = mail.outbox
    assert message.to == [alice.email]
    assert "Reset your" in message.subject
    # Alice belongs to one organization, so the email carries its branding, and nothing of Globex.
    assert "Acme Pty Ltd" in message.subject
    html = html_of(message)
    assert "#1f4e79" in html and "Globex" not in html and "Globex" not in message.body
    page = client.get(RESET).content.decode()
    assert "Globex" not in page and "Acme" not in page


@pytest.mark.isolation("portal:password_reset_done")
def test_done_page_says_nothing_about_the_address(client, carol, globex):
    body = client.get(reverse("portal:password_reset_done")).content.decode()
    assert "If an account uses that address" in body
    assert "Globex" not in body and "carol" not in body


@pytest.mark.isolation("portal:password_reset_confirm")
def test_the_emailed_link_sets_a_new_password_once(alice, carol, globex, django_capture_on_commit_callbacks, acme):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(RESET, {"email": alice.email})
    path = reset_path(mail.outbox[0])
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    body = form_page.content.decode()
    assert "Choose a new password" in body and "Globex" not in body
    set_password_url = form_page.redirect_chain[-1][0]
    mismatch = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": "something-else-9"})
    assert mismatch.status_code == 200 and "new_password2" in mismatch.context["form"].errors
    done = client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("portal:password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.for_org(acme).filter(action="auth.password_reset").exists()
    # The link is spent.
    again = Client().get(path, follow=True)
    assert "This link no longer works" in again.content.decode()
    # And the new password signs in.
    response = Client().post("/login/", {"email": alice.email, "password": NEW_PASSWORD})
    assert response.status_code == 302


@pytest.mark.isolation("portal:password_reset_complete")
def test_complete_page_is_generic(client, carol, globex):
    body = client.get(reverse("portal:password_reset_complete")).content.decode()
    assert "Your password is changed" in body and "Globex" not in body


def test_resetting_the_password_lifts_a_lockout(alice, django_capture_on_commit_callbacks):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"email": alice.email, "password": "wrong-password"})
    assert AccessAttempt.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(RESET, {"email": alice.email})
    set_password_url = client.get(reset_path(mail.outbox[0]), follow=True).redirect_chain[-1][0]
    client.post(set_password_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert client.post("/login/", {"email": alice.email, "password": NEW_PASSWORD}).status_code == 302
