"""POST /api/quotes and GET /api/quotes/{quote_key}: shape, money as strings, 400 by field, 403 with a next step."""

from __future__ import annotations

import base64
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event
from quotes.api import unit_price_text
from quotes.models import Plan, Quote, QuoteStatus
from quotes.services import quote_create_custom
from tenancy.api_auth import PublicRateThrottle
from tests.quotes.conftest import PROSPECT

pytestmark = pytest.mark.django_db

BODY = {
    "email": PROSPECT,
    "tier": "core_plus",
    "configuration": {"users": 12, "devices": 20, "add_ons": [{"code": "backup_tb", "quantity": 2}, "sms_pack_250"]},
}


@pytest.fixture
def client():
    return APIClient()


def post(client, body=None, **changes):
    return client.post("/api/quotes", {**(body or BODY), **changes}, format="json")


def test_create_prices_the_configuration(client, price_book, prospect):
    response = post(client)
    assert response.status_code == 201, response.json()
    body = response.json()
    key = body["quote_key"]
    assert body == {
        "quote_key": key,
        "tier": "core_plus",
        "configuration": {
            "users": 12,
            "devices": 20,
            "add_ons": [{"code": "backup_tb", "quantity": 2}, {"code": "sms_pack_250", "quantity": 1}],
        },
        "lines": [
            {
                "code": "base",
                "description": "Core+ plan (includes 10 users and 15 devices)",
                "quantity": 1,
                "unit_price": "499.00",
                "amount": "499.00",
            },
            {
                "code": "extra_users",
                "description": "Additional users",
                "quantity": 2,
                "unit_price": "45.00",
                "amount": "90.00",
            },
            {
                "code": "extra_devices",
                "description": "Additional devices",
                "quantity": 5,
                "unit_price": "15.00",
                "amount": "75.00",
            },
            {
                "code": "backup_tb",
                "description": "Cloud backup (per TB)",
                "quantity": 2,
                "unit_price": "79.00",
                "amount": "158.00",
            },
            {
                "code": "sms_pack_250",
                "description": "SMS pack (250 messages) (per pack)",
                "quantity": 1,
                "unit_price": "25.00",
                "amount": "25.00",
            },
        ],
        "price_monthly": "847.00",
        "currency": "AUD",
        "status": "DRAFT",
        "expires_at": body["expires_at"],
        "url": f"/quote/{key}",
    }
    quote = Quote.objects.get()
    assert quote.quote_key == key
    assert quote.email == PROSPECT
    assert quote.qualification == prospect
    assert quote.price_monthly == Decimal("847.00")
    assert quote.lines.count() == 5
    assert abs(quote.expires_at - (timezone.now() + timedelta(days=30))) < timedelta(minutes=1)
    assert Event.objects.filter(type="quote.created").count() == 1


def test_quote_key_carries_at_least_128_random_bits(client, price_book, prospect):
    keys = {post(client).json()["quote_key"] for _ in range(3)}
    assert len(keys) == 3
    for key in keys:
        assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) >= 16


def test_email_is_matched_case_insensitively_and_stored_lowercase(client, price_book, prospect):
    response = post(client, email="  DANA@Prospect.TEST ")
    assert response.status_code == 201
    assert Quote.objects.get().email == PROSPECT


def test_paths_work_with_and_without_trailing_slash(client, price_book, prospect):
    assert client.post("/api/quotes/", BODY, format="json").status_code == 201
    key = Quote.objects.get().quote_key
    assert client.get(f"/api/quotes/{key}").status_code == 200
    assert client.get(f"/api/quotes/{key}/").status_code == 200


def test_get_returns_the_same_quote_without_the_email(client, price_book, prospect):
    created = post(client).json()
    response = client.get(f"/api/quotes/{created['quote_key']}")
    assert response.status_code == 200
    assert response.json() == created
    assert PROSPECT not in response.content.decode()
    assert "email" not in response.json()


def test_get_unknown_key_is_404(client, price_book, prospect):
    post(client)
    assert client.get("/api/quotes/" + "A" * 43).status_code == 404
    assert client.get("/api/quotes/short").status_code == 404


def test_quote_past_its_expiry_reads_expired_before_the_beat_task_runs(client, price_book, prospect):
    key = post(client).json()["quote_key"]
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        assert client.get(f"/api/quotes/{key}").json()["status"] == "EXPIRED"
    assert Quote.objects.get().status == QuoteStatus.DRAFT


def test_premium_quote_with_an_add_on_core_plus_cannot_have(client, price_book, qualify):
    qualify(email="cfo@bigco.test", tier="premium", status="APPROVED")
    response = post(
        client,
        email="cfo@bigco.test",
        tier="premium",
        configuration={"users": 30, "devices": 40, "add_ons": ["after_hours_support"]},
    )
    assert response.status_code == 201, response.json()
    assert response.json()["price_monthly"] == "1843.00"  # 1299 + 5 x 39 + 349


def test_get_query_count_does_not_grow_with_lines(client, price_book, staff, django_assert_max_num_queries):
    lines = [{"description": f"Service {n}", "quantity": n, "unit_price": "10.00"} for n in range(1, 31)]
    quote = quote_create_custom(email=PROSPECT, tier="enterprise", lines=lines, created_by=staff)
    # 1. the quote by its key, 2. its lines (prefetched). Throttling uses the cache.
    with django_assert_max_num_queries(2):
        response = client.get(f"/api/quotes/{quote.quote_key}")
    assert len(response.json()["lines"]) == 30


# -- bad input: 400 naming the field, nothing stored ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"tier": "platinum"}, "tier"),
        ({"tier": "CORE_PLUS"}, "tier"),
        ({"configuration": "12 users"}, "configuration"),
        ({"configuration": None}, "configuration"),
        ({"configuration": {"users": -1, "devices": 1}}, "configuration.users"),
        ({"configuration": {"users": 10_001, "devices": 1}}, "configuration.users"),
        ({"configuration": {"users": "5", "devices": 1}}, "configuration.users"),
        ({"configuration": {"users": 5}}, "configuration.devices"),
        ({"configuration": {"users": 5, "devices": 2.5}}, "configuration.devices"),
        ({"configuration": {"users": 5, "devices": 5, "add_ons": ["gold_plating"]}}, "configuration.add_ons"),
        ({"configuration": {"users": 5, "devices": 5, "add_ons": ["after_hours_support"]}}, "configuration.add_ons"),
        ({"configuration": {"users": 5, "devices": 5, "add_ons": [{"code": "backup_tb", "quantity": 0}]}},
         "configuration.add_ons"),
        ({"configuration": {"users": 5, "devices": 5, "discount": 50}}, "configuration.discount"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_field(client, price_book, prospect, changes, field):
    response = post(client, **changes)
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert Quote.objects.count() == 0
    assert not Event.objects.filter(type__startswith="quote.").exists()


def test_missing_fields_are_400(client, price_book, prospect):
    response = client.post("/api/quotes", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"email", "tier", "configuration"}


def test_duplicate_add_on_is_400(client, price_book, prospect):
    add_ons = ["backup_tb", {"code": "backup_tb", "quantity": 2}]
    response = post(client, configuration={"users": 1, "devices": 1, "add_ons": add_ons})
    assert response.status_code == 400
    assert response.json() == {
        "configuration.add_ons": ["'backup_tb' is listed more than once; give it a quantity instead."]
    }
    assert Quote.objects.count() == 0


def test_not_json_is_rejected(client, price_book, prospect):
    assert client.post("/api/quotes", "email=x", content_type="application/x-www-form-urlencoded").status_code == 415
    assert client.post("/api/quotes", "[1, 2]", content_type="application/json").status_code == 400


# -- who may self-serve: 403 with the reason and the next step --------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "next_step"),
    [("MANUAL_REVIEW", "await_review"), ("NOT_QUALIFIED", "contact_sales")],
)
def test_unapproved_prospect_is_403_with_next_step(client, price_book, qualify, status, next_step):
    qualify(status=status)
    response = post(client)
    assert response.status_code == 403
    body = response.json()
    assert set(body) == {"detail", "next_step"}
    assert body["next_step"] == next_step
    assert body["detail"]
    assert Quote.objects.count() == 0


def test_prospect_without_a_questionnaire_is_told_to_complete_it(client, price_book):
    response = post(client)
    assert response.status_code == 403
    assert response.json()["next_step"] == "complete_questionnaire"
    assert "questionnaire" in response.json()["detail"]


def test_approval_is_per_tier(client, price_book, prospect):
    response = post(client, tier="premium", configuration={"users": 30, "devices": 40})
    assert response.status_code == 403
    assert Quote.objects.count() == 0


def test_enterprise_cannot_self_serve(client, price_book, qualify):
    qualify(tier="enterprise", status="QUALIFIED")
    response = post(client, tier="enterprise")
    assert response.status_code == 403
    assert response.json()["next_step"] == "book_discovery_call"
    assert Quote.objects.count() == 0


def test_plan_withdrawn_from_the_price_book_cannot_be_quoted(client, price_book, prospect):
    Plan.objects.filter(tier="core_plus").update(active=False)
    response = post(client)
    assert response.status_code == 403
    assert response.json()["next_step"] == "contact_sales"


def test_inactive_add_on_is_unknown(client, price_book, prospect):
    price_book["add_ons"]["backup_tb"].active = False
    price_book["add_ons"]["backup_tb"].save()
    response = post(client)
    assert response.status_code == 400
    assert "configuration.add_ons" in response.json()


def test_public_endpoints_are_throttled_per_address(client, price_book, prospect, monkeypatch):
    monkeypatch.setattr(PublicRateThrottle, "THROTTLE_RATES", {"public": "3/min"})
    statuses = [client.get("/api/quotes/" + "A" * 43).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert post(client).status_code == 429


def test_unit_prices_keep_the_decimals_the_price_book_uses():
    assert unit_price_text(Decimal("45.0000")) == "45.00"
    assert unit_price_text(Decimal("2.4750")) == "2.475"
    assert unit_price_text(Decimal("0.0050")) == "0.005"
    assert unit_price_text(Decimal("100")) == "100.00"
