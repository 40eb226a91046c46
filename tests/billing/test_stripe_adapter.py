"""The Stripe adapter against recorded Stripe replies: what it sends (method, path, form body, headers) and what it
makes of the answers. No database, no network: ``responses`` fails any request that was not recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe
from responses import RequestsMock

from billing.providers import get_provider
from billing.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    PaymentProvider,
    PriceLine,
    ProviderError,
    SubscriptionRef,
)
from billing.providers.stripe import StripeProvider

API = "https://api.stripe.com"
QUOTE_ID = "0b6f5c1e-3d1a-4d8e-9a55-2f7c5e1b9d40"
SESSION_ID = "cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ"
SESSION_URL = f"https://checkout.stripe.com/c/pay/{SESSION_ID}#fidkdWxOYHwnPyd1blpxYHZxWjA0"
SUB_ID = "sub_1QxYz2AbCdEfGhIjKlMnOpQr"
CUSTOMER = "cus_RaBcDeFgHiJkLm"
PERIOD_START = 1767225600  # 2026-01-01T00:00:00Z
PERIOD_END = 1769904000  # 2026-02-01T00:00:00Z

CORE = PriceLine(product="keel-core_plus-base", name="Core Plus", unit_amount=4900, quantity=12)
SMS = PriceLine(product="keel-sms_250", name="SMS bundle (250)", unit_amount=1500, quantity=1)


@pytest.fixture(autouse=True)
def _stripe_settings(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_123"
    settings.STRIPE_API_VERSION = ""


@pytest.fixture
def api() -> Iterator[RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def provider() -> StripeProvider:
    return StripeProvider(max_network_retries=0)


def checkout_request(*, lines: tuple[PriceLine, ...] = (CORE, SMS), trial_days: int = 14) -> CheckoutRequest:
    return CheckoutRequest(
        quote_key="Q-7KX2M9",
        quote_id=QUOTE_ID,
        email="alice@acme.test",
        tier="core_plus",
        currency="AUD",
        lines=lines,
        trial_days=trial_days,
        success_url="https://keel.test/checkout/done?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://keel.test/quotes/Q-7KX2M9",
    )


def subscription_ref(*item_ids: str) -> SubscriptionRef:
    return SubscriptionRef(
        id=SUB_ID,
        customer=CUSTOMER,
        currency="AUD",
        item_ids=item_ids or ("si_RcOre0000000001", "si_RsMs00000000001"),
        metadata={"quote_key": "Q-7KX2M9", "tier": "core_plus"},
    )


# ----------------------------------------------------------------------------------------------------------------
# Recorded Stripe objects.
# ----------------------------------------------------------------------------------------------------------------


def product_json(line: PriceLine) -> dict[str, Any]:
    return {
        "id": line.product,
        "object": "product",
        "active": True,
        "created": PERIOD_START,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": line.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": PERIOD_START,
        "url": None,
    }


def session_json() -> dict[str, Any]:
    return {
        "id": SESSION_ID,
        "object": "checkout.session",
        "amount_subtotal": 60300,
        "amount_total": 60300,
        "cancel_url": "https://keel.test/quotes/Q-7KX2M9",
        "client_reference_id": QUOTE_ID,
        "created": PERIOD_START,
        "currency": "aud",
        "customer": None,
        "customer_email": "alice@acme.test",
        "expires_at": PERIOD_START + 86400,
        "livemode": False,
        "metadata": {"quote_key": "Q-7KX2M9", "tier": "core_plus"},
        "mode": "subscription",
        "payment_status": "unpaid",
        "status": "open",
        "subscription": None,
        "success_url": "https://keel.test/checkout/done?session={CHECKOUT_SESSION_ID}",
        "url": SESSION_URL,
    }


def item_json(item_id: str, line: PriceLine) -> dict[str, Any]:
    return {
        "id": item_id,
        "object": "subscription_item",
        "created": PERIOD_START,
        "current_period_start": PERIOD_START,
        "current_period_end": PERIOD_END,
        "discounts": [],
        "metadata": {},
        "price": {
            "id": f"price_{item_id[3:]}",
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": PERIOD_START,
            "currency": "aud",
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": line.product,
            "recurring": {"interval": "month", "interval_count": 1, "meter": None, "usage_type": "licensed"},
            "tax_behavior": "unspecified",
            "type": "recurring",
            "unit_amount": line.unit_amount,
            "unit_amount_decimal": str(line.unit_amount),
        },
        "quantity": line.quantity,
        "subscription": SUB_ID,
        "tax_rates": [],
    }


def subscription_json(
    items: list[tuple[str, PriceLine]] | None = None,
    *,
    status: str = "active",
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    items = items if items is not None else [("si_RcOre0000000001", CORE), ("si_RsMs00000000001", SMS)]
    return {
        "id": SUB_ID,
        "object": "subscription",
        "billing_cycle_anchor": PERIOD_START,
        "cancel_at": PERIOD_END if cancel_at_period_end else None,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "collection_method": "charge_automatically",
        "created": PERIOD_START,
        "currency": "aud",
        "customer": CUSTOMER,
        "ended_at": canceled_at,
        "items": {
            "object": "list",
            "data": [item_json(item_id, line) for item_id, line in items],
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={SUB_ID}",
        },
        "latest_invoice": "in_1QxYz2AbCdEfGhIj",
        "livemode": False,
        "metadata": metadata if metadata is not None else {"quote_key": "Q-7KX2M9", "tier": "core_plus"},
        "start_date": PERIOD_START,
        "status": status,
        "trial_end": None,
        "trial_start": None,
    }


def error_json(type_: str, message: str, *, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error.update(code=code, doc_url=f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}")
    if param:
        error["param"] = param
    return {"error": error}


def missing_product(product: str) -> dict[str, Any]:
    return error_json("invalid_request_error", f"No such product: '{product}'", code="resource_missing", param="id")


# ----------------------------------------------------------------------------------------------------------------
# Reading what was sent.
# ----------------------------------------------------------------------------------------------------------------


def form(call: Any) -> dict[str, str]:
    """The form-encoded body of a recorded request, one value per key."""
    body = call.request.body
    assert isinstance(body, str)
    return {key: value for key, [value] in parse_qs(body, strict_parsing=True).items()}


def sent(api: RequestsMock) -> list[tuple[str | None, str | None]]:
    """Method and URL (path and query) of every request, in order."""
    return [(call.request.method, call.request.url) for call in api.calls]


def assert_authenticated(api: RequestsMock) -> None:
    for call in api.calls:
        assert call.request.headers["Authorization"] == "Bearer sk_test_123"
        assert call.request.headers["Stripe-Version"] == stripe.api_version


def is_plain(value: Any) -> bool:
    if isinstance(value, list):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return type(value) is dict and all(isinstance(k, str) and is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, str | int | float | bool)


# ----------------------------------------------------------------------------------------------------------------
# Checkout.
# ----------------------------------------------------------------------------------------------------------------


def test_checkout_creates_missing_products_then_a_subscription_session(api, provider):
    for line in (CORE, SMS):
        api.get(f"{API}/v1/products/{line.product}", status=404, json=missing_product(line.product))
        api.post(f"{API}/v1/products", json=product_json(line))
    api.post(f"{API}/v1/checkout/sessions", json=session_json())

    session = provider.checkout_session_create(checkout_request())

    assert session == CheckoutSession(id=SESSION_ID, url=SESSION_URL)
    assert sent(api) == [
        ("GET", f"{API}/v1/products/keel-core_plus-base"),
        ("POST", f"{API}/v1/products"),
        ("GET", f"{API}/v1/products/keel-sms_250"),
        ("POST", f"{API}/v1/products"),
        ("POST", f"{API}/v1/checkout/sessions"),
    ]
    assert form(api.calls[1]) == {"id": "keel-core_plus-base", "name": "Core Plus"}
    assert form(api.calls[3]) == {"id": "keel-sms_250", "name": "SMS bundle (250)"}
    checkout = api.calls[4]
    assert form(checkout) == {
        "mode": "subscription",
        "line_items[0][price_data][currency]": "aud",
        "line_items[0][price_data][product]": "keel-core_plus-base",
        "line_items[0][price_data][unit_amount]": "4900",
        "line_items[0][price_data][recurring][interval]": "month",
        "line_items[0][quantity]": "12",
        "line_items[1][price_data][currency]": "aud",
        "line_items[1][price_data][product]": "keel-sms_250",
        "line_items[1][price_data][unit_amount]": "1500",
        "line_items[1][price_data][recurring][interval]": "month",
        "line_items[1][quantity]": "1",
        "customer_email": "alice@acme.test",
        "client_reference_id": QUOTE_ID,
        "metadata[quote_key]": "Q-7KX2M9",
        "metadata[tier]": "core_plus",
        "subscription_data[metadata][quote_key]": "Q-7KX2M9",
        "subscription_data[metadata][tier]": "core_plus",
        "subscription_data[trial_period_days]": "14",
        "success_url": "https://keel.test/checkout/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://keel.test/quotes/Q-7KX2M9",
    }
    assert checkout.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert checkout.request.headers["Idempotency-Key"].startswith(f"keel-checkout-{QUOTE_ID}-")
    assert_authenticated(api)


def test_checkout_with_existing_products_creates_none_and_sends_no_trial(api, provider):
    for line in (CORE, SMS):
        api.get(f"{API}/v1/products/{line.product}", json=product_json(line))
    api.post(f"{API}/v1/checkout/sessions", json=session_json())

    provider.checkout_session_create(checkout_request(trial_days=0))

    assert sent(api) == [
        ("GET", f"{API}/v1/products/keel-core_plus-base"),
        ("GET", f"{API}/v1/products/keel-sms_250"),
        ("POST", f"{API}/v1/checkout/sessions"),
    ]
    body = form(api.calls[2])
    assert "subscription_data[trial_period_days]" not in body
    assert body["subscription_data[metadata][quote_key]"] == "Q-7KX2M9"
    assert_authenticated(api)


def test_a_repeat_checkout_reuses_known_products_and_the_idempotency_key(api, provider):
    for line in (CORE, SMS):
        api.get(f"{API}/v1/products/{line.product}", json=product_json(line))
    api.post(f"{API}/v1/checkout/sessions", json=session_json())

    first = provider.checkout_session_create(checkout_request())
    again = provider.checkout_session_create(checkout_request())
    fewer_seats = provider.checkout_session_create(checkout_request(lines=(replace(CORE, quantity=5),)))

    assert first == again == fewer_seats == CheckoutSession(id=SESSION_ID, url=SESSION_URL)
    # The products are looked up once for the provider's lifetime.
    assert [method for method, _ in sent(api)] == ["GET", "GET", "POST", "POST", "POST"]
    keys = [call.request.headers["Idempotency-Key"] for call in api.calls[2:]]
    assert keys[0] == keys[1]  # the same click again: Stripe replays the same session
    assert keys[2] != keys[0]  # other lines: a new session
    assert form(api.calls[4])["line_items[0][quantity]"] == "5"
    assert "line_items[1][quantity]" not in form(api.calls[4])


def test_a_product_created_concurrently_by_another_worker_is_fine(api, provider):
    api.get(f"{API}/v1/products/keel-core_plus-base", status=404, json=missing_product("keel-core_plus-base"))
    api.post(
        f"{API}/v1/products",
        status=400,
        json=error_json(
            "invalid_request_error",
            "Product already exists.",
            code="resource_already_exists",
            param="id",
        ),
    )
    api.post(f"{API}/v1/checkout/sessions", json=session_json())

    session = provider.checkout_session_create(checkout_request(lines=(CORE,)))

    assert session.id == SESSION_ID
    assert sent(api) == [
        ("GET", f"{API}/v1/products/keel-core_plus-base"),
        ("POST", f"{API}/v1/products"),
        ("POST", f"{API}/v1/checkout/sessions"),
    ]


def test_a_refused_product_lookup_stops_the_checkout(api, provider):
    api.get(
        f"{API}/v1/products/keel-core_plus-base",
        status=401,
        json=error_json("invalid_request_error", "Invalid API Key provided: sk_test_123"),
    )

    with pytest.raises(ProviderError) as caught:
        provider.checkout_session_create(checkout_request(lines=(CORE,)))

    assert caught.value.retryable is False
    assert "sk_test_123" not in caught.value.message
    assert "Invalid API Key provided" in caught.value.message
    assert sent(api) == [("GET", f"{API}/v1/products/keel-core_plus-base")]  # no create, no session


# ----------------------------------------------------------------------------------------------------------------
# Billing portal and subscriptions.
# ----------------------------------------------------------------------------------------------------------------


def test_billing_portal_url(api, provider):
    portal_url = "https://billing.stripe.com/p/session/test_YWNjdF8xTjJ4"
    api.post(
        f"{API}/v1/billing_portal/sessions",
        json={
            "id": "bps_1QxYz2AbCdEfGhIj",
            "object": "billing_portal.session",
            "configuration": "bpc_1QxYz2AbCdEfGhIj",
            "created": PERIOD_START,
            "customer": CUSTOMER,
            "flow": None,
            "livemode": False,
            "locale": None,
            "on_behalf_of": None,
            "return_url": "https://keel.test/billing",
            "url": portal_url,
        },
    )

    url = provider.billing_portal_url(customer=CUSTOMER, return_url="https://keel.test/billing")

    assert url == portal_url
    assert sent(api) == [("POST", f"{API}/v1/billing_portal/sessions")]
    assert form(api.calls[0]) == {"customer": CUSTOMER, "return_url": "https://keel.test/billing"}
    assert api.calls[0].request.headers["Idempotency-Key"]
    assert_authenticated(api)


def test_replace_items_deletes_every_item_and_adds_the_new_lines_prorated(api, provider):
    premium = PriceLine(product="keel-premium-base", name="Premium", unit_amount=8900, quantity=12)
    for line in (premium, SMS):
        api.get(f"{API}/v1/products/{line.product}", json=product_json(line))
    new_metadata = {"quote_key": "Q-7KX2M9", "tier": "premium"}
    api.post(
        f"{API}/v1/subscriptions/{SUB_ID}",
        json=subscription_json([("si_RpRem000000001", premium), ("si_RsMs00000000002", SMS)], metadata=new_metadata),
    )

    result = provider.subscription_replace_items(
        subscription=subscription_ref(), lines=[premium, SMS], metadata=new_metadata
    )

    assert sent(api)[-1] == ("POST", f"{API}/v1/subscriptions/{SUB_ID}")
    assert form(api.calls[2]) == {
        "items[0][id]": "si_RcOre0000000001",
        "items[0][deleted]": "true",
        "items[1][id]": "si_RsMs00000000001",
        "items[1][deleted]": "true",
        "items[2][price_data][currency]": "aud",
        "items[2][price_data][product]": "keel-premium-base",
        "items[2][price_data][unit_amount]": "8900",
        "items[2][price_data][recurring][interval]": "month",
        "items[2][quantity]": "12",
        "items[3][price_data][currency]": "aud",
        "items[3][price_data][product]": "keel-sms_250",
        "items[3][price_data][unit_amount]": "1500",
        "items[3][price_data][recurring][interval]": "month",
        "items[3][quantity]": "1",
        "proration_behavior": "create_prorations",
        "metadata[quote_key]": "Q-7KX2M9",
        "metadata[tier]": "premium",
    }
    assert api.calls[2].request.headers["Idempotency-Key"].startswith(f"keel-replace-{SUB_ID}-")
    assert_authenticated(api)
    # The reply comes back as plain data in Stripe's shape, ready for the code that applies webhook events.
    assert is_plain(result)
    assert json.loads(json.dumps(result)) == result
    assert [(i["id"], i["price"]["product"], i["quantity"]) for i in result["items"]["data"]] == [
        ("si_RpRem000000001", "keel-premium-base", 12),
        ("si_RsMs00000000002", "keel-sms_250", 1),
    ]
    assert result["items"]["data"][0]["current_period_end"] == PERIOD_END
    assert result["items"]["data"][0]["price"]["unit_amount_decimal"] == "8900"
    assert result["metadata"] == new_metadata


def test_cancel_now_deletes_the_subscription(api, provider):
    api.delete(
        f"{API}/v1/subscriptions/{SUB_ID}",
        json=subscription_json(status="canceled", canceled_at=PERIOD_START + 3600),
    )

    result = provider.subscription_cancel(subscription=subscription_ref(), at_period_end=False)

    assert sent(api) == [("DELETE", f"{API}/v1/subscriptions/{SUB_ID}")]
    assert not api.calls[0].request.body
    assert_authenticated(api)
    assert is_plain(result)
    assert (result["status"], result["canceled_at"]) == ("canceled", PERIOD_START + 3600)


def test_cancel_at_period_end_schedules_the_cancellation(api, provider):
    api.post(f"{API}/v1/subscriptions/{SUB_ID}", json=subscription_json(cancel_at_period_end=True))

    result = provider.subscription_cancel(subscription=subscription_ref(), at_period_end=True)

    assert sent(api) == [("POST", f"{API}/v1/subscriptions/{SUB_ID}")]
    assert form(api.calls[0]) == {"cancel_at_period_end": "true"}
    assert api.calls[0].request.headers["Idempotency-Key"]
    assert_authenticated(api)
    assert is_plain(result)
    assert (result["status"], result["cancel_at_period_end"]) == ("active", True)


def test_resume_withdraws_the_scheduled_cancellation(api, provider):
    api.post(f"{API}/v1/subscriptions/{SUB_ID}", json=subscription_json(cancel_at_period_end=False))

    result = provider.subscription_resume(subscription=subscription_ref())

    assert sent(api) == [("POST", f"{API}/v1/subscriptions/{SUB_ID}")]
    assert form(api.calls[0]) == {"cancel_at_period_end": "false"}
    assert api.calls[0].request.headers["Idempotency-Key"]
    assert_authenticated(api)
    assert is_plain(result)
    assert result["cancel_at_period_end"] is False


# ----------------------------------------------------------------------------------------------------------------
# Errors.
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (402, error_json("card_error", "Your card was declined.", code="card_declined"), False),
        (400, error_json("invalid_request_error", "Invalid currency: xyz.", param="currency"), False),
        (403, error_json("invalid_request_error", "This key does not have access."), False),
        (429, error_json("invalid_request_error", "Too many requests.", code="rate_limit"), True),
        (500, error_json("api_error", "Something went wrong on Stripe's end."), True),
        (503, error_json("api_error", "Service unavailable."), True),
    ],
)
def test_stripe_errors_become_provider_errors(api, provider, status, error, retryable):
    api.post(f"{API}/v1/subscriptions/{SUB_ID}", status=status, json=error, headers={"Request-Id": "req_8sKq2"})

    with pytest.raises(ProviderError) as caught:
        provider.subscription_cancel(subscription=subscription_ref(), at_period_end=True)

    assert caught.value.retryable is retryable
    assert error["error"]["message"] in caught.value.message
    assert f"HTTP {status}" in caught.value.message
    assert "sk_test_123" not in caught.value.message
    assert isinstance(caught.value.__cause__, stripe.StripeError)
    assert len(api.calls) == 1


def test_an_unreachable_stripe_is_retryable(api, provider):
    api.post(f"{API}/v1/billing_portal/sessions", body=requests.ConnectionError("connection refused"))

    with pytest.raises(ProviderError) as caught:
        provider.billing_portal_url(customer=CUSTOMER, return_url="https://keel.test/billing")

    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, stripe.APIConnectionError)
    assert len(api.calls) == 1


def test_the_default_client_retries_a_server_error_twice_with_one_idempotency_key(api, monkeypatch):
    monkeypatch.setattr(stripe._http_client.HTTPClient, "_sleep_time_seconds", lambda self, num_retries: 0.0)
    api.post(f"{API}/v1/subscriptions/{SUB_ID}", status=500, json=error_json("api_error", "Internal error."))

    with pytest.raises(ProviderError) as caught:
        StripeProvider().subscription_resume(subscription=subscription_ref())

    assert caught.value.retryable is True
    assert len(api.calls) == 3
    assert len({call.request.headers["Idempotency-Key"] for call in api.calls}) == 1


# ----------------------------------------------------------------------------------------------------------------
# Wiring.
# ----------------------------------------------------------------------------------------------------------------


def test_the_api_version_setting_pins_the_stripe_version(api, settings):
    settings.STRIPE_API_VERSION = "2025-03-31.basil"
    api.post(f"{API}/v1/subscriptions/{SUB_ID}", json=subscription_json())

    StripeProvider(max_network_retries=0).subscription_resume(subscription=subscription_ref())

    assert api.calls[0].request.headers["Stripe-Version"] == "2025-03-31.basil"


def test_get_provider_returns_the_stripe_adapter(settings):
    settings.STRIPE_PROVIDER = "stripe"
    provider: PaymentProvider = get_provider()
    assert isinstance(provider, StripeProvider)
    assert provider.name == "stripe"
