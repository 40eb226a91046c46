"""The Stripe adapter against recorded Stripe replies (subscriptions, checkouts, invoice payments): what it sends
(method, path, form body, headers) and what it makes of the answers. No database, no network: ``responses`` fails
any request that was not recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
import stripe
from responses import RequestsMock

from billing import declines
from billing.providers import get_provider
from billing.providers.base import (
    ChargeRequest,
    ChargeStatus,
    CheckoutRequest,
    CheckoutSession,
    InvoiceCheckoutRequest,
    PaymentProvider,
    PriceLine,
    ProviderError,
    SubscriptionRef,
    intent_result,
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


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "30", timedelta(seconds=30)),
        (503, "Fri, 02 Jan 2026 00:02:00 GMT", timedelta(minutes=2)),
        (429, None, None),
        (500, "30", None),  # Retry-After means something on a 429 or a 503 only
    ],
)
def test_a_rate_limit_or_an_outage_carries_the_wait_stripe_asked_for(
    api, provider, time_machine, status, retry_after, wait
):
    time_machine.move_to(datetime(2026, 1, 2, 0, 0, tzinfo=UTC), tick=False)
    headers = {"Request-Id": "req_8sKq2", **({"Retry-After": retry_after} if retry_after else {})}
    if status == 429:
        reply = error_json("invalid_request_error", "Too many requests.", code="rate_limit")
    else:
        reply = error_json("api_error", "Service unavailable.")
    api.post(f"{API}/v1/payment_intents", status=status, json=reply, headers=headers)

    with pytest.raises(ProviderError) as caught:
        provider.payment_intent_create(charge())

    assert caught.value.retryable is True and caught.value.retry_after == wait
    if status == 429:
        assert isinstance(caught.value.__cause__, stripe.RateLimitError)


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


# ----------------------------------------------------------------------------------------------------------------
# Invoice payments: off-session charges (a success, soft and hard declines, an outage) and the invoice checkout.
# ----------------------------------------------------------------------------------------------------------------

METHOD = "pm_1QzAbCdEfGhIjKlMnOpQrStU"
INTENT = "pi_3QzAbCdEfGhIjKlM1aBcDeFg"
INVOICE = "7d1c0f4e-2b7a-4c55-8e0d-3a9b6f2e1c11"
ATTEMPT = "5a4e3c2b-1d0f-4e9a-8b7c-6d5e4f3a2b10"
KEY = f"keel-invoice-{INVOICE}-attempt-2"
METADATA = {"keel_invoice": INVOICE, "keel_attempt": ATTEMPT, "keel_organization": "acme"}


def charge(**changes: Any) -> ChargeRequest:
    fields: dict[str, Any] = {
        "customer": CUSTOMER,
        "payment_method": METHOD,
        "amount": 110000,
        "currency": "AUD",
        "description": "Invoice INV-00042",
        "idempotency_key": KEY,
        "metadata": METADATA,
    }
    return ChargeRequest(**{**fields, **changes})


def intent_json(status: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": INTENT,
        "object": "payment_intent",
        "amount": 110000,
        "amount_received": 110000 if status == "succeeded" else 0,
        "currency": "aud",
        "customer": CUSTOMER,
        "payment_method": METHOD,
        "status": status,
        "last_payment_error": error,
        "metadata": METADATA,
        "livemode": False,
        "created": 1767225600,
    }


def card_error(code: str, decline_code: str | None, message: str) -> dict[str, Any]:
    error = {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "doc_url": f"https://stripe.com/docs/error-codes/{code}",
        "request_log_url": "https://dashboard.stripe.com/test/logs/req_1",
    }
    return {"error": {**error, "payment_intent": intent_json("requires_payment_method", error)}}


def test_a_successful_off_session_charge_sends_the_attempts_key_and_confirms_at_once(api, provider):
    api.post(f"{API}/v1/payment_intents", json=intent_json("succeeded"))
    result = provider.payment_intent_create(charge())
    assert (result.status, result.payment_intent_id, result.payment_method) == (ChargeStatus.SUCCEEDED, INTENT, METHOD)
    (call,) = api.calls
    assert call.request.headers["Idempotency-Key"] == KEY
    sent = form(call)
    assert sent["amount"] == "110000" and sent["currency"] == "aud" and sent["customer"] == CUSTOMER
    assert sent["off_session"] == "true" and sent["confirm"] == "true" and sent["payment_method"] == METHOD
    assert sent["metadata[keel_attempt]"] == ATTEMPT and sent["metadata[keel_invoice]"] == INVOICE


def test_a_soft_decline_is_a_failed_result_with_the_issuers_reason(api, provider):
    api.post(
        f"{API}/v1/payment_intents",
        status=402,
        json=card_error("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    )
    result = provider.payment_intent_create(charge())
    assert (result.status, result.payment_intent_id) == (ChargeStatus.FAILED, INTENT)
    assert (result.failure_code, result.decline_code) == ("card_declined", "insufficient_funds")
    assert declines.classify(result.failure_code, result.decline_code).hard is False


def test_a_hard_decline_is_recognised(api, provider):
    api.post(
        f"{API}/v1/payment_intents",
        status=402,
        json=card_error("card_declined", "stolen_card", "Your card was declined."),
    )
    result = provider.payment_intent_create(charge())
    verdict = declines.classify(result.failure_code, result.decline_code)
    assert (result.status, verdict.hard, verdict.message) == (ChargeStatus.FAILED, True, "The card was declined.")


def test_authentication_required_off_session_is_final(api, provider):
    api.post(
        f"{API}/v1/payment_intents",
        status=402,
        json=card_error(
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
        ),
    )
    result = provider.payment_intent_create(charge())
    assert declines.classify(result.failure_code, result.decline_code).hard is True


def test_an_outage_is_a_retryable_provider_error_not_a_decline(api, provider):
    api.post(
        f"{API}/v1/payment_intents", status=500, json={"error": {"type": "api_error", "message": "sk_test_123 boom"}}
    )
    with pytest.raises(ProviderError) as refused:
        provider.payment_intent_create(charge())
    assert refused.value.retryable is True and "sk_test_123" not in refused.value.message


def test_the_invoice_checkout_is_a_payment_session_carrying_the_attempt(api, provider):
    api.post(
        f"{API}/v1/checkout/sessions",
        json={
            "id": "cs_test_pay1",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_pay1",
            "mode": "payment",
            "status": "open",
        },
    )
    request = InvoiceCheckoutRequest(
        invoice_id=INVOICE,
        reference="INV-00042",
        organization_id="acme",
        attempt=3,
        amount=55000,
        currency="AUD",
        email="alice@acme.test",
        customer="",
        save_card=True,
        success_url="https://keel.test/i?paid=1",
        cancel_url="https://keel.test/i",
        idempotency_key=f"keel-invoice-checkout-{ATTEMPT}",
        metadata=METADATA,
    )
    session = provider.invoice_checkout_create(request)
    assert session.url.endswith("cs_test_pay1")
    (call,) = api.calls
    sent = form(call)
    assert sent["mode"] == "payment" and sent["customer_creation"] == "always"
    assert sent["customer_email"] == "alice@acme.test" and sent["client_reference_id"] == INVOICE
    assert sent["line_items[0][price_data][unit_amount]"] == "55000"
    assert sent["payment_intent_data[setup_future_usage]"] == "off_session"
    assert sent["payment_intent_data[metadata][keel_attempt]"] == ATTEMPT
    assert call.request.headers["Idempotency-Key"] == f"keel-invoice-checkout-{ATTEMPT}"


def test_a_payment_intent_event_object_reads_as_the_same_result():
    error = {"code": "card_declined", "decline_code": "generic_decline", "message": "Your card was declined."}
    failed = intent_result(intent_json("requires_payment_method", error))
    assert (failed.status, failed.decline_code, failed.message) == ("failed", "generic_decline", error["message"])
    assert intent_result(intent_json("processing")).status == ChargeStatus.PROCESSING
    assert intent_result({**intent_json("succeeded"), "payment_method": {"id": METHOD}}).payment_method == METHOD


@pytest.mark.parametrize(
    ("failure", "decline", "hard"),
    [
        ("card_declined", "insufficient_funds", False),
        ("card_declined", "generic_decline", False),
        ("card_declined", "do_not_honor", False),
        ("processing_error", None, False),
        ("card_declined", "lost_card", True),
        ("card_declined", "fraudulent", True),
        ("expired_card", None, True),
        ("incorrect_cvc", None, True),
        ("card_declined", "do_not_try_again", True),
        ("something_new", None, False),
    ],
)
def test_the_hard_decline_table(failure, decline, hard):
    assert declines.classify(failure, decline).hard is hard


def test_retry_schedule_parsing_and_the_last_wait_repeating():
    from datetime import timedelta

    schedule = declines.parse_schedule("1h, 6h,1d,3d,7d")
    assert schedule == (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=3), timedelta(days=7))
    waits = [declines.next_retry(failures, schedule[:2], 4) for failures in (1, 2, 3, 4)]
    assert waits == [timedelta(hours=1), timedelta(hours=6), timedelta(hours=6), None]
    for bad in ("1w", "h", "0d", "-1d", ""):
        with pytest.raises(ValueError, match="not a wait"):
            declines.parse_schedule(bad)
    assert declines.parse_days("14, -3,1,7") == (-3, 1, 7, 14)
    with pytest.raises(ValueError, match="whole number"):
        declines.parse_days("1,x")
