"""The public quote routes expose no tenant data: no organization, no email, no listing; only the full key reads
a quote, and every other key gets the same 404 (no enumeration). Credentials change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from quotes import services
from quotes.models import Quote
from tests.quotes.conftest import PROSPECT

pytestmark = pytest.mark.django_db

BODY: dict[str, Any] = {"email": PROSPECT, "tier": "core_plus", "configuration": {"users": 3, "devices": 3}}


@pytest.fixture
def callers(alice, carol, api, acme, api_key_for):
    """Anonymous, alice's session, an Acme API key, and carol's session."""
    alice_session = APIClient()
    alice_session.force_login(alice)
    carol_session = APIClient()
    carol_session.force_login(carol)
    _, raw = api_key_for(organization=acme)
    return [APIClient(), alice_session, api(raw), carol_session]


def test_credentials_do_not_attach_a_tenant(price_book, prospect, callers):
    for client in callers:
        response = client.post("/api/quotes", BODY, format="json", HTTP_X_ORGANIZATION="acme")
        assert response.status_code == 201
    assert not Quote.objects.exclude(organization=None).exists()


@pytest.mark.isolation("api-quote-create")
def test_create_reveals_no_tenant_and_lists_nothing(price_book, prospect, callers, acme, globex):
    accepted = services.quote_create(**BODY)
    services.quote_mark_accepted(quote=accepted, organization=globex)
    for client in callers:
        response = client.post("/api/quotes", BODY, format="json")
        text = response.content.decode().lower()
        for secret in ("acme", "globex", "alice", "carol", PROSPECT, accepted.quote_key.lower(), "organization"):
            assert secret not in text
        # No listing of quotes, by anyone.
        assert client.get("/api/quotes").status_code == 405
        assert client.get("/api/quotes/").status_code == 405


@pytest.mark.isolation("api-quote-detail")
def test_detail_needs_the_full_key_and_reveals_no_tenant(price_book, prospect, callers, globex):
    quote = services.quote_create(**BODY)
    services.quote_mark_accepted(quote=quote, organization=globex)
    key = quote.quote_key
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    guesses = [key[:-1], key[:20], key + "x", key.swapcase(), flipped, str(quote.pk), "A" * 43, "1"]
    for client in callers:
        response = client.get(f"/api/quotes/{key}")
        assert response.status_code == 200
        text = response.content.decode().lower()
        for secret in ("globex", "carol", PROSPECT, str(globex.pk), "organization", "email"):
            assert secret not in text
        not_found = [client.get(f"/api/quotes/{guess}") for guess in guesses]
        assert {r.status_code for r in not_found} == {404}
        assert len({r.content for r in not_found}) == 1  # the same answer for every wrong key
        assert client.get("/api/quotes/%25").status_code == 404
