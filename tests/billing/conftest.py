"""Billing fixtures: the quotes price book and prospects, the sandbox provider, signed Stripe deliveries, and a
customer provisioned through the whole checkout."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from billing.models import Subscription
from billing.providers import sandbox
from billing.signatures import sign
from quotes import services as quote_services
from quotes.models import Quote
from tenancy.models import Role
from tests.billing.api_support import ALL_SCOPES as API_SCOPES_ALL
from tests.billing.api_support import NOW as API_NOW
from tests.billing.api_support import session
from tests.factories import MembershipFactory, UserFactory
from tests.quotes.conftest import PROSPECT, price_book, prospect, qualify, staff, staff_client  # noqa: F401

SECRET = "whsec_test_secret"
CONFIGURATION = {"users": 12, "devices": 15, "add_ons": [{"code": "sms_pack_250", "quantity": 2}, "backup_tb"]}


@pytest.fixture(autouse=True)
def _sandbox_payments(settings: Any) -> None:
    settings.STRIPE_PROVIDER = "sandbox"
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_WEBHOOK_TOLERANCE = 300
    sandbox.SENT.clear()


@pytest.fixture
def quote(price_book: Any, prospect: Any) -> Quote:  # noqa: F811
    """A Core+ quote for 12 users (2 extra), 15 devices, two 250-message SMS packs and 1 TB of backup."""
    return quote_services.quote_create(email=PROSPECT, tier="core_plus", configuration=CONFIGURATION)


def event(
    type_: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test_{uuid.uuid4().hex}",
        "object": "event",
        "type": type_,
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def deliver(client: Client, body: dict[str, Any] | bytes, *, secret: str = SECRET, timestamp: int | None = None,
            header: str | None = None) -> Any:  # fmt: skip
    """POST a delivery to the webhook endpoint as Stripe would, signed with ``secret`` at ``timestamp``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = header if header is not None else sign(raw, secret, timestamp or int(time.time()))
    return client.post("/webhooks/stripe", raw, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


@pytest.fixture
def checkout_events(quote: Quote) -> Callable[..., list[dict[str, Any]]]:
    """The three events the sandbox sends when the quote's checkout is paid."""

    def make(**overrides: Any) -> list[dict[str, Any]]:
        from billing.services.subscriptions import checkout_start

        url = checkout_start(quote_key=quote.quote_key, success_url="http://testserver/checkout/complete?session_id={CHECKOUT_SESSION_ID}",
                             cancel_url="http://testserver/")  # fmt: skip
        session = sandbox.checkout_session_read(url.rstrip("/").rsplit("/", 1)[-1])
        session.update(overrides)
        return sandbox.checkout_completion_events(session)

    return make


@pytest.fixture
def customer(
    client: Client, checkout_events: Callable[..., list[dict[str, Any]]], django_capture_on_commit_callbacks: Any
) -> Subscription:
    """The quote paid through the sandbox and provisioned: a new organization with its owner and subscription."""
    with django_capture_on_commit_callbacks(execute=True):
        for item in checkout_events():
            assert deliver(client, item).status_code == 200
    return Subscription.objects.select_related("organization", "owner").get()


# -- the contract and invoice API ------------------------------------------------------------------------------------


@pytest.fixture
def tuesday_morning(time_machine: Any) -> None:
    time_machine.move_to(API_NOW, tick=False)


@pytest.fixture
def tess(acme: Any) -> Any:
    """A staff member of the MSP, with a membership so her session can act for Acme."""
    user = UserFactory(email="tess@keel.test", full_name="Tess Billing", is_staff=True)
    MembershipFactory(user=user, organization=acme, role=Role.MEMBER)
    return user


@pytest.fixture
def acme_key(api: Any, acme: Any, api_key_for: Any) -> Any:
    _, raw = api_key_for(organization=acme, scopes=API_SCOPES_ALL)
    return api(raw)


@pytest.fixture
def summit_raw(summit: Any, api_key_for: Any) -> str:
    _, raw = api_key_for(partner=summit, scopes=API_SCOPES_ALL)
    return raw


@pytest.fixture
def acme_callers(alice: Any, acme_key: Any, api: Any, summit_raw: str, tess: Any) -> list[tuple[Any, int]]:
    """Who acts for Acme, and what their writes to another organization's objects get: 404, except a customer's,
    refused (403) before any lookup as customers never write billing."""
    return [(session(alice), 403), (acme_key, 404), (api(summit_raw, organization="acme"), 404), (session(tess), 404)]
