"""Magic links: emailed, short-lived, single use; the GET only shows a button, the POST signs in."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from sesame.utils import get_query_string

from tenancy.models import AuditEvent, User
from tests.helpers import race
from tests.portal.conftest import html_of

pytestmark = pytest.mark.django_db

REQUEST = "/login/magic/"
CONFIRM = "/login/magic/confirm/"


def link_path(message) -> str:
    match = re.search(r"https?://[^/\s]+(/login/magic/confirm/\?token=[\w\-:.%]+)", str(message.body))
    assert match, message.body
    return match.group(1)


def signed_in_as(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


@pytest.mark.isolation("portal:magic_link")
def test_request_sends_a_link_and_shows_the_same_page_for_unknown_addresses(
    client, alice, carol, globex, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post(REQUEST, {"email": "ALICE@acme.test"})
        unknown = client.post(REQUEST, {"email": "nobody@nowhere.test"})
    assert known.status_code == unknown.status_code == 200
    assert known.templates[0].name == unknown.templates[0].name == "portal/auth/magic_link_sent.html"
    for response in (known, unknown):
        body = response.content.decode()
        assert "Check your inbox" in body
        assert "Globex" not in body and "Acme" not in body
    [message] = mail.outbox
    assert message.to == ["alice@acme.test"]
    assert "sign-in link" in message.subject.lower()
    assert "Globex" not in message.body
    link_path(message)
    assert "Sign in" in html_of(message)


def test_a_second_request_within_a_minute_sends_nothing_more(client, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(REQUEST, {"email": alice.email})
        again = client.post(REQUEST, {"email": alice.email})
    assert again.status_code == 200 and "Check your inbox" in again.content.decode()
    assert len(mail.outbox) == 1


def test_bad_email_is_a_form_error(client):
    response = client.post(REQUEST, {"email": "not-an-address"})
    assert response.status_code == 400
    assert "email" in response.context["form"].errors


@pytest.mark.isolation("portal:magic_link_confirm")
def test_get_shows_a_button_and_neither_signs_in_nor_consumes(client, alice, carol, globex):
    path = CONFIRM + get_query_string(alice)
    for _ in range(2):  # a mail scanner following the link, then the person
        response = client.get(path)
        assert response.status_code == 200
        body = response.content.decode()
        assert alice.email in body and 'method="post"' in body
        assert "Globex" not in body and "Acme" not in body
    assert signed_in_as(client) is None
    alice.refresh_from_db()
    assert alice.last_login is None
    response = client.post(path)
    assert response.status_code == 302 and response["Location"] == reverse("portal:dashboard")
    assert signed_in_as(client) == str(alice.pk)


def test_post_signs_in_once_and_the_same_link_then_fails(alice, acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post(REQUEST, {"email": alice.email})
    path = link_path(mail.outbox[0])
    first = Client()
    assert first.get(path).status_code == 200
    response = first.post(path)
    assert response.status_code == 302
    assert signed_in_as(first) == str(alice.pk)
    event = AuditEvent.objects.for_org(acme).get(action="auth.signed_in")
    assert event.changes == {"method": "magic_link"}

    second = Client()
    again = second.post(path)
    assert again.status_code == 410
    assert "no longer works" in again.content.decode()
    assert signed_in_as(second) is None
    assert second.get(path).status_code == 410


def test_an_expired_link_fails(client, alice):
    path = CONFIRM + get_query_string(alice)
    later = timezone.now() + timedelta(seconds=settings.SESAME_MAX_AGE + 60)
    with time_machine.travel(later):
        assert client.get(path).status_code == 410
        response = client.post(path)
    assert response.status_code == 410
    assert signed_in_as(client) is None


def test_a_tampered_or_missing_token_fails(client, alice):
    assert client.post(CONFIRM).status_code == 410
    path = CONFIRM + get_query_string(alice)
    assert client.post(path[:-3] + "AAA").status_code == 410
    assert signed_in_as(client) is None


def test_guessing_tokens_locks_the_address_out(client, alice):
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.get(CONFIRM, {"token": f"guess{attempt}"}).status_code == 410
    assert client.get(CONFIRM, {"token": "one-more-guess"}).status_code == 429
    # Even a real link is refused from this address during the cool-off.
    response = client.post(CONFIRM + get_query_string(alice))
    assert response.status_code == 429
    assert signed_in_as(client) is None


def test_the_second_factor_still_applies_after_a_magic_link(client, alice, mfa_device):
    mfa_device(alice)
    response = client.post(CONFIRM + get_query_string(alice))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login_verify"))
    assert client.get("/dashboard/")["Location"].startswith(reverse("portal:login_verify"))


@pytest.mark.django_db(transaction=True)
def test_the_claim_lets_exactly_one_of_two_racing_posts_sign_in(alice, monkeypatch):
    """Both requests pass the token check before either signs in; the conditional update admits only one."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested against PostgreSQL (SQLite serialises the whole database)")
    import portal.views.auth as auth_views

    path = CONFIRM + get_query_string(alice)
    real_get_user = auth_views.get_user
    barrier = threading.Barrier(2, timeout=10)

    def get_user_then_wait(*args, **kwargs):
        user = real_get_user(*args, **kwargs)
        barrier.wait()  # both racers hold a valid token before either claims it
        return user

    monkeypatch.setattr(auth_views, "get_user", get_user_then_wait)
    results = race(lambda: Client().post(path).status_code)
    assert sorted(results) == [302, 410]
    assert User.objects.get(pk=alice.pk).last_login is not None
