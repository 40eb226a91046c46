"""Checkout: POST /api/checkout, Accept and pay on the quote page, the sandbox checkout page, the return page that
signs the new owner in once, and the welcome email's sign-in link."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import StripeEvent, Subscription
from billing.providers import sandbox
from billing.providers.base import ProviderError
from qualification.models import Qualification
from quotes import services as quote_services
from quotes.models import Quote
from tests.billing.conftest import PROSPECT

pytestmark = pytest.mark.django_db


def _token(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


# -- POST /api/checkout ---------------------------------------------------------------------------------------------


def test_checkout_returns_a_session_for_the_quote_lines(quote):
    response = APIClient().post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
    assert response.status_code == 200
    url = response.json()["checkout_url"]
    assert url.startswith("http://testserver/sandbox/stripe/checkout/")
    session = sandbox.checkout_session_read(_token(url))
    assert session["email"] == PROSPECT
    assert session["quote_key"] == quote.quote_key
    assert session["tier"] == "core_plus" and session["currency"] == "AUD"
    assert [(line["product"], line["unit_amount"], line["quantity"]) for line in session["lines"]] == [
        ("keel-core_plus-base", 49900, 1),
        ("keel-core_plus-extra_users", 4500, 2),
        ("keel-addon-sms_pack_250", 2500, 2),
        ("keel-addon-backup_tb", 7900, 1),
    ]
    assert session["success_url"] == f"http://testserver/checkout/complete?session_id={session['id']}"
    assert session["cancel_url"] == f"http://testserver/quote/{quote.quote_key}"
    assert APIClient().post("/api/checkout/", {"quote_key": quote.quote_key}, format="json").status_code == 200


def test_a_sub_cent_unit_price_is_billed_as_one_unit_of_the_quoted_amount(quote, price_book, qualify):
    qualify(tier="premium", status="APPROVED")
    price_book["plans"]["premium"].per_device = "2.4750"
    price_book["plans"]["premium"].save()
    quote = quote_services.quote_create(email=PROSPECT, tier="premium", configuration={"users": 25, "devices": 43})
    response = APIClient().post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
    lines = sandbox.checkout_session_read(_token(response.json()["checkout_url"]))["lines"]
    # 3 devices x 2.475 = 7.425, quoted as 7.43: billed as one unit of 7.43.
    assert lines[1] == {"product": "keel-premium-extra_devices", "name": "Additional devices (3 x 2.475)",
                        "unit_amount": 743, "quantity": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "quote_key"),
        ({"quote_key": ""}, 400, "quote_key"),
        ([1], 400, "detail"),
        ({"quote_key": "x" * 43}, 404, "detail"),
    ],
)
def test_checkout_refuses_bad_or_unknown_keys(quote, body, status, field):
    response = APIClient().post("/api/checkout", body, format="json")
    assert response.status_code == status
    assert field in response.json()
    assert sandbox.SENT == []


@pytest.mark.parametrize("outcome", ["accepted", "rejected", "expired", "past_expiry"])
def test_checkout_refuses_a_quote_that_is_no_longer_open(quote, acme, outcome):
    if outcome == "accepted":
        quote_services.quote_mark_accepted(quote=quote, organization=acme)
    elif outcome == "rejected":
        quote_services.quote_reject(quote=quote)
    elif outcome == "expired":
        quote_services.quote_expire(quote=quote)
    else:  # still DRAFT in the database, but past its expiry
        Quote.objects.filter(pk=quote.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    response = APIClient().post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
    assert response.status_code == 409
    assert "can no longer be paid" in str(response.json())
    assert sandbox.SENT == []


def test_a_provider_failure_is_a_502_with_a_message(quote, monkeypatch):
    def refuse(self: Any, request: Any) -> Any:
        raise ProviderError("Stripe: try again (APIConnectionError)", retryable=True)

    monkeypatch.setattr(sandbox.SandboxProvider, "checkout_session_create", refuse)
    response = APIClient().post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
    assert response.status_code == 502
    assert "try again" in response.json()["detail"]


@pytest.mark.isolation("api-checkout")
def test_checkout_reveals_no_tenant_whoever_calls(quote, alice, globex, api_key_for, acme):
    signed_in = APIClient()
    signed_in.force_login(alice)
    _, raw = api_key_for(organization=acme)
    keyed = APIClient()
    keyed.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_ORGANIZATION="globex")
    for client in (APIClient(), signed_in, keyed):
        response = client.post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
        assert response.status_code == 200
        assert set(response.json()) == {"checkout_url"}
        text = response.content.decode().lower()
        assert "globex" not in text and "acme" not in text and PROSPECT not in text
    # Paying another organization's accepted quote is refused, and says nothing about the organization.
    quote_services.quote_mark_accepted(quote=quote, organization=globex)
    response = signed_in.post("/api/checkout", {"quote_key": quote.quote_key}, format="json")
    assert response.status_code == 409
    assert "globex" not in response.content.decode().lower()


# -- the quote page and the sandbox checkout -------------------------------------------------------------------------


@pytest.mark.isolation("portal:quote_checkout")
def test_accept_and_pay_goes_to_checkout_and_reveals_no_tenant(client, quote, globex):
    page = client.get(quote.url).content.decode()
    assert "Accept and pay" in page and f'action="/quote/{quote.quote_key}/checkout"' in page
    response = client.post(f"/quote/{quote.quote_key}/checkout")
    assert response.status_code == 302
    assert response["Location"].startswith("/sandbox/stripe/checkout/")
    assert client.post("/quote/" + "x" * 43 + "/checkout").status_code == 404
    assert client.get(f"/quote/{quote.quote_key}/checkout").status_code == 405
    quote_services.quote_mark_accepted(quote=quote, organization=globex)
    refused = client.post(f"/quote/{quote.quote_key}/checkout")
    assert refused.status_code == 409
    body = refused.content.decode()
    assert "can no longer be paid" in body and "Globex" not in body and "Accept and pay" not in body


@pytest.mark.isolation("billing:sandbox_checkout")
def test_sandbox_checkout_page_completes_through_the_webhook(client, quote, settings, alice, globex,
                                                             django_capture_on_commit_callbacks):  # fmt: skip
    client.force_login(alice)  # who is signed in changes nothing: the session decides what is bought
    url = client.post(f"/quote/{quote.quote_key}/checkout")["Location"]
    page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Sandbox payments" in text and PROSPECT in text and "718.00" in text and "Globex" not in text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    assert response.status_code == 302
    assert response["Location"].startswith("http://testserver/checkout/complete?session_id=cs_sbx_")
    # Three signed deliveries went through the webhook's own code and were processed.
    assert list(StripeEvent.objects.order_by("pk").values_list("type", "status")) == [
        ("customer.subscription.created", "DONE"),
        ("checkout.session.completed", "DONE"),
        ("invoice.paid", "DONE"),
    ]
    subscription = Subscription.objects.get()
    assert subscription.organization.slug != "globex" and subscription.organization.memberships.count() == 1
    # A tampered link is not a checkout; with the real provider the page does not exist.
    assert client.get(url[:-3] + "abc").status_code == 404
    settings.STRIPE_PROVIDER = "stripe"
    assert client.get(url).status_code == 404


def test_a_sandbox_checkout_link_expires_after_a_day(client, quote):
    url = client.post(f"/quote/{quote.quote_key}/checkout")["Location"]
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        assert client.get(url).status_code == 404
    with pytest.raises(signing.BadSignature):
        sandbox.checkout_session_read("forged")


# -- back from checkout ----------------------------------------------------------------------------------------------


@pytest.fixture
def pay(django_capture_on_commit_callbacks: Any) -> Any:
    """Accept and pay the quote in ``client``'s browser; the webhook's work runs as the request's commit would."""

    def run(client: Client, quote: Quote) -> str:
        url = client.post(f"/quote/{quote.quote_key}/checkout")["Location"]
        with django_capture_on_commit_callbacks(execute=True):
            return str(client.post(url)["Location"])

    return run


@pytest.mark.isolation("portal:checkout_complete")
def test_the_return_page_signs_the_new_owner_in_once(client, quote, pay, alice, globex):
    success = pay(client, quote)
    response = client.get(success)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    dashboard = client.get("/dashboard/").content.decode()
    assert "prospect.test" in dashboard and "Globex" not in dashboard
    # The same link again, in another browser: not signed in, just told the account is ready.
    other = Client()
    again = other.get(success)
    assert again.status_code == 200
    assert "Your account is ready" in again.content.decode()
    assert other.get("/dashboard/").status_code == 302
    # A session id that is not a checkout, or none at all, signs nobody in and names nobody.
    for path in ("/checkout/complete?session_id=cs_sbx_unknown", "/checkout/complete"):
        page = Client().get(path)
        assert page.status_code == 200
        assert "alice" not in page.content.decode().lower() and "globex" not in page.content.decode().lower()


def test_the_return_page_waits_until_the_webhook_is_processed(client):
    page = client.get("/checkout/complete?session_id=cs_sbx_pending")
    assert page.status_code == 200
    assert "Setting up your account" in page.content.decode()
    assert '<meta http-equiv="refresh" content="2">' in page.content.decode()
    assert "no-cache" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_the_return_page_does_not_sign_in_an_existing_account_or_after_an_hour(client, quote, pay, price_book):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(email=PROSPECT, password="an-Existing-pa55word")
    success = pay(client, quote)
    assert client.get(success).status_code == 200  # existing accounts keep their own sign-in (and second factor)
    Qualification.objects.create(tier="core_plus", customer_email="new@prospect.test", status="AUTO_APPROVED")
    second = quote_services.quote_create(
        email="new@prospect.test", tier="core_plus", configuration={"users": 1, "devices": 1}
    )
    other = Client()
    late = pay(other, second)
    with time_machine.travel(timezone.now() + timedelta(minutes=61)):
        assert other.get(late).status_code == 200


def welcome_path(mailoutbox: list[Any]) -> str:
    """The sign-in link's path in the one welcome email."""
    (mail,) = [mail for mail in mailoutbox if "Welcome" in mail.subject]
    found = re.search(r"(/login/welcome/\?token=\S+)", mail.body)
    assert found is not None, mail.body
    return found.group(1)


@pytest.mark.isolation("portal:welcome_link_confirm")
def test_the_welcome_link_signs_in_once_and_only_as_a_welcome_link(client, quote, pay, mailoutbox, globex, alice):
    pay(client, quote)  # not following the return page: the owner signs in from the email instead
    path = welcome_path(mailoutbox)
    browser = Client()
    confirm = browser.get(path)
    assert confirm.status_code == 200 and PROSPECT in confirm.content.decode()
    assert "globex" not in confirm.content.decode().lower()
    assert browser.post(path).status_code == 302
    assert browser.get("/dashboard/").status_code == 200
    # Single use.
    assert Client().post(path).status_code == 410
    # A welcome token is not an ordinary magic link, and an ordinary magic-link token is not a welcome link.
    token = parse_qs(urlsplit(path).query)["token"][0]
    assert Client().get(f"/login/magic/confirm/?token={token}").status_code == 410
    from sesame.utils import get_query_string

    assert Client().get("/login/welcome/" + get_query_string(alice)).status_code == 410


def test_the_welcome_link_lasts_a_week(client, quote, pay, mailoutbox):
    pay(client, quote)
    path = welcome_path(mailoutbox)
    with time_machine.travel(timezone.now() + timedelta(days=6)):
        assert Client().get(path).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert Client().get(path).status_code == 410
