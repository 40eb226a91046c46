"""The real payment provider: Stripe, through its official SDK (``stripe.StripeClient``).

Prices are sent inline (``price_data``) against one Stripe product per plan or add-on, whose id is Keel's own stable
product id, so nothing has to be set up in the Stripe dashboard first. Every Stripe error becomes a ``ProviderError``:
retryable when Stripe could not be reached, limited the rate (429) or failed (5xx), with the wait a 429 or 503 named
in ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import stripe
from django.conf import settings
from stripe.params import PaymentIntentCreateParams, SubscriptionUpdateParams, SubscriptionUpdateParamsItem
from stripe.params.checkout import (
    SessionCreateParams,
    SessionCreateParamsPaymentIntentData,
    SessionCreateParamsSubscriptionData,
)

from billing.providers.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    CheckoutRequest,
    CheckoutSession,
    InvoiceCheckoutRequest,
    PriceLine,
    ProviderError,
    SubscriptionRef,
    card_label,
    intent_result,
)
from msp.retry_after import retry_after_header

_API_KEY = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_\w+")


class StripeProvider:
    name = "stripe"

    def __init__(self, *, client: stripe.StripeClient | None = None, max_network_retries: int = 2) -> None:
        self._client = client or stripe.StripeClient(
            settings.STRIPE_SECRET_KEY,
            stripe_version=settings.STRIPE_API_VERSION or None,
            max_network_retries=max_network_retries,
        )
        self._known_products: set[str] = set()

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        currency = request.currency.lower()
        metadata = {"quote_key": request.quote_key, "tier": request.tier}
        subscription_data: SessionCreateParamsSubscriptionData = {"metadata": dict(metadata)}
        if request.trial_days > 0:
            subscription_data["trial_period_days"] = request.trial_days
        params: SessionCreateParams = {
            "mode": "subscription",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "product": line.product,
                        "unit_amount": line.unit_amount,
                        "recurring": {"interval": "month"},
                    },
                    "quantity": line.quantity,
                }
                for line in request.lines
            ],
            "customer_email": request.email,
            "client_reference_id": request.quote_id,
            "metadata": metadata,
            "subscription_data": subscription_data,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        # A repeat click within Stripe's idempotency window gets the same session back. The digest covers every
        # parameter, not only the lines, so a changed email makes a new session instead of an idempotency error.
        idempotency_key = f"keel-checkout-{request.quote_id}-{_digest(params)}"
        with _provider_errors():
            self._ensure_products(request.lines)
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        if not session.url:
            raise ProviderError(f"Stripe returned checkout session {session.id} without a URL")
        return CheckoutSession(id=session.id, url=session.url)

    def billing_portal_url(self, *, customer: str, return_url: str) -> str:
        with _provider_errors():
            session = self._client.v1.billing_portal.sessions.create(
                params={"customer": customer, "return_url": return_url}
            )
        return session.url

    def subscription_replace_items(
        self, *, subscription: SubscriptionRef, lines: Sequence[PriceLine], metadata: dict[str, str]
    ) -> dict[str, Any]:
        currency = subscription.currency.lower()
        items: list[SubscriptionUpdateParamsItem] = [
            {"id": item_id, "deleted": True} for item_id in subscription.item_ids
        ]
        items += [
            {
                "price_data": {
                    "currency": currency,
                    "product": line.product,
                    "unit_amount": line.unit_amount,
                    "recurring": {"interval": "month"},
                },
                "quantity": line.quantity,
            }
            for line in lines
        ]
        params: SubscriptionUpdateParams = {
            "items": items,
            "proration_behavior": "create_prorations",
            "metadata": dict(metadata),
        }
        # The current item ids are part of the key: a double submit replays, a later change (new item ids) does not.
        idempotency_key = f"keel-replace-{subscription.id}-{_digest(params)}"
        with _provider_errors():
            self._ensure_products(lines)
            updated = self._client.v1.subscriptions.update(
                subscription.id, params=params, options={"idempotency_key": idempotency_key}
            )
        return _plain(updated)

    def subscription_cancel(self, *, subscription: SubscriptionRef, at_period_end: bool) -> dict[str, Any]:
        with _provider_errors():
            if at_period_end:
                updated = self._client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
            else:
                updated = self._client.v1.subscriptions.cancel(subscription.id)
        return _plain(updated)

    def subscription_resume(self, *, subscription: SubscriptionRef) -> dict[str, Any]:
        with _provider_errors():
            updated = self._client.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": False})
        return _plain(updated)

    def payment_intent_create(self, request: ChargeRequest) -> ChargeResult:
        params: PaymentIntentCreateParams = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "customer": request.customer,
            "payment_method": request.payment_method,
            "off_session": True,
            "confirm": True,
            "description": request.description,
            "metadata": dict(request.metadata),
        }
        try:
            intent = self._client.v1.payment_intents.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
        except stripe.CardError as declined:
            # A decline is an answer, not an outage: the error carries the payment intent and the issuer's reason.
            error = declined.error
            failed_intent = error.payment_intent if error is not None else None
            return ChargeResult(
                payment_intent_id=str(failed_intent.id) if failed_intent is not None else "",
                status=ChargeStatus.FAILED,
                failure_code=str(declined.code or ""),
                decline_code=str((error.decline_code if error is not None else None) or ""),
                message=" ".join(str(declined.user_message or "").split())[:500],
                payment_method=request.payment_method,
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc
        return intent_result(_plain(intent))

    def card_label(self, *, payment_method: str) -> str:
        with _provider_errors():
            method = self._client.v1.payment_methods.retrieve(payment_method)
        card = getattr(method, "card", None)
        if card is None:
            return ""
        return card_label(str(getattr(card, "brand", "") or ""), str(getattr(card, "last4", "") or ""))

    def invoice_checkout_create(self, request: InvoiceCheckoutRequest) -> CheckoutSession:
        intent_data: SessionCreateParamsPaymentIntentData = {"metadata": dict(request.metadata)}
        if request.save_card:
            intent_data["setup_future_usage"] = "off_session"
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": f"Invoice {request.reference}"},
                    },
                    "quantity": 1,
                }
            ],
            "client_reference_id": request.invoice_id,
            "metadata": dict(request.metadata),
            "payment_intent_data": intent_data,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer:
            params["customer"] = request.customer
        else:
            params["customer_creation"] = "always"
            params["customer_email"] = request.email
        with _provider_errors():
            session = self._client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": request.idempotency_key}
            )
        if not session.url:
            raise ProviderError(f"Stripe returned checkout session {session.id} without a URL")
        return CheckoutSession(id=session.id, url=session.url)

    def _ensure_products(self, lines: Sequence[PriceLine]) -> None:
        for line in lines:
            if line.product in self._known_products:
                continue
            try:
                self._client.v1.products.retrieve(line.product)
            except stripe.InvalidRequestError as exc:
                if exc.http_status != 404 and exc.code != "resource_missing":
                    raise
                self._product_create(line)
            self._known_products.add(line.product)

    def _product_create(self, line: PriceLine) -> None:
        try:
            self._client.v1.products.create(params={"id": line.product, "name": line.name})
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_already_exists":
                raise  # else another worker created it between our retrieve and create


def _plain(obj: stripe.StripeObject) -> dict[str, Any]:
    # for_json: decimal strings (``unit_amount_decimal``) stay strings, as in a webhook event's JSON.
    return obj.to_dict(for_json=True)


def _digest(params: Any) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:32]


@contextmanager
def _provider_errors() -> Iterator[None]:
    try:
        yield
    except stripe.StripeError as exc:
        raise _provider_error(exc) from exc


def _provider_error(exc: stripe.StripeError) -> ProviderError:
    status = exc.http_status
    retryable = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (status or 0) >= 500
    detail = " ".join(str(exc.user_message or "no message").split())
    context = ", ".join(str(part) for part in (type(exc).__name__, status and f"HTTP {status}", exc.code) if part)
    message = _API_KEY.sub("[redacted]", f"Stripe: {detail} ({context})")
    advice = retry_after_header(exc.headers) if status in (429, 503) else None
    limited = isinstance(exc, stripe.RateLimitError) or status == 429
    return ProviderError(message[:500], retryable=retryable, retry_after=advice, rate_limited=limited)
