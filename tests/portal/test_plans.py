"""Plans page, plan selector, and the quote step of an approved prospect (public pages)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from qualification.models import Qualification
from quotes.models import Quote

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(db):
    return Qualification.objects.create(tier="core_plus", customer_email="buyer@shop.test", status="AUTO_APPROVED",
                                        auto_score=90)  # fmt: skip


@pytest.fixture
def in_review(db):
    return Qualification.objects.create(tier="core_plus", customer_email="wait@shop.test", status="MANUAL_REVIEW",
                                        auto_score=60)  # fmt: skip


@pytest.mark.isolation("portal:business_plans")
def test_plans_page_is_built_from_the_price_book(client: Client, acme):
    body = client.get("/business-plans").content.decode()
    # The seeded price book (quotes data migration): Core+ from AUD 499.00, Premium 1299.00, Enterprise tailored.
    assert "AUD 499.00" in body and "AUD 1299.00" in body and "Tailored quote" in body
    assert "Acme" not in body


@pytest.mark.isolation("portal:plan_selector")
@pytest.mark.parametrize(
    ("query", "tier"),
    [("people=12", "Core+"), ("people=12&regulated=on", "Premium"), ("people=400", "Enterprise"),
     ("people=8&around_the_clock=on", "Enterprise")],
)  # fmt: skip
def test_plan_selector_recommends_a_tier(client: Client, query, tier, acme):
    body = client.get(f"/plan-selector?{query}").content.decode()
    assert f"We recommend {tier}" in body
    assert "Acme" not in body


def test_plan_selector_rejects_bad_input_beside_the_field(client: Client):
    response = client.get("/plan-selector?people=0")
    assert response.status_code == 400
    assert "people" in response.context["form"].errors


@pytest.mark.isolation("portal:qualification_quote", "portal:quote")
def test_approved_prospect_gets_a_quote_and_sees_its_page(client: Client, approved, acme):
    status_page = client.get(f"/qualification-status/{approved.id}").content.decode()
    assert "Get my quote" in status_page
    response = client.post(f"/qualification-status/{approved.id}/quote",
                           {"users": "12", "devices": "15", "add_on_backup_tb": "2"})  # fmt: skip
    quote = Quote.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/quote/{quote.quote_key}"
    assert quote.email == "buyer@shop.test"
    assert quote.configuration["users"] == 12
    page = client.get(response["Location"]).content.decode()
    assert str(quote.price_monthly) in page
    assert "buyer@shop.test" not in page and "Acme" not in page
    # Only the full key finds it.
    assert client.get(f"/quote/{quote.quote_key[:-1]}").status_code == 404
    assert client.get("/quote/short").status_code == 404


def test_prospect_in_review_is_refused_a_quote_with_the_next_step(client: Client, in_review):
    assert "Get my quote" not in client.get(f"/qualification-status/{in_review.id}").content.decode()
    response = client.post(f"/qualification-status/{in_review.id}/quote", {"users": "5", "devices": "5"})
    assert response.status_code == 400
    assert "manual review" in response.content.decode().lower()
    assert Quote.objects.count() == 0


def test_quote_form_errors_are_shown(client: Client, approved):
    response = client.post(f"/qualification-status/{approved.id}/quote", {"users": "-1", "devices": "x"})
    assert response.status_code == 400
    assert Quote.objects.count() == 0


def test_unknown_qualification_cannot_ask_for_a_quote(client: Client):
    response = client.post("/qualification-status/00000000-0000-0000-0000-000000000000/quote", {"users": "1"})
    assert response.status_code == 404


def test_expired_quote_says_so(client: Client, approved):
    client.post(f"/qualification-status/{approved.id}/quote", {"users": "5", "devices": "5"})
    quote = Quote.objects.get()
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        body = client.get(f"/quote/{quote.quote_key}").content.decode()
    assert "This quote has expired" in body
