"""The local stand-in for Stripe: no network, no keys.

Checkout sessions are local pages (``billing:sandbox_checkout``); the session travels signed in the page's URL, so
nothing is stored until payment. Paying builds the events Stripe would send (the subscription, the checkout, the
first invoice), signs them with ``STRIPE_WEBHOOK_SECRET`` and hands them to the webhook's own receive function:
the same verification, storage and processing as real deliveries. Changes to a subscription are answered with the
subscription object Stripe would return. Everything the sandbox is asked to do is logged and kept in ``SENT``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from billing import signatures
from billing.providers.base import (
    ChargeRequest,
    ChargeResult,
    ChargeStatus,
    CheckoutRequest,
    CheckoutSession,
    InvoiceCheckoutRequest,
    PriceLine,
    SubscriptionRef,
    card_label,
)

logger = logging.getLogger(__name__)

CHECKOUT_SALT = "billing.sandbox.checkout"
INVOICE_CHECKOUT_SALT = "billing.sandbox.invoice-checkout"
PORTAL_SALT = "billing.sandbox.portal"
# Sandbox checkout links stay usable for a day, like Stripe's sessions.
CHECKOUT_MAX_AGE = 24 * 3600
MONTH = 30 * 86400
SENT: list[tuple[str, dict[str, Any]]] = []
SENT_LIMIT = 200


def _record(operation: str, detail: dict[str, Any]) -> None:
    logger.info("sandbox payments: %s %s", operation, detail)
    SENT.append((operation, detail))
    del SENT[:-SENT_LIMIT]


def _new_id(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


# A card typed on the sandbox's payment page is saved as ``pm_sbx_<brand><last 4>_<random>``, so that its label can be
# told later by any process, as Stripe tells it from the payment method.
_CARD_METHOD = re.compile(r"^pm_sbx_([a-z]+)(\d{4})_[0-9a-f]+$")


def _card_method(card: str) -> str:
    digits = "".join(character for character in card if character.isdigit())
    brand = "visa" if digits.startswith("4") else "amex" if digits[:2] in ("34", "37") else "mastercard"
    return f"pm_sbx_{brand}{digits[-4:]}_{secrets.token_hex(8)}"


def _item(line: PriceLine, currency: str, period_end: int) -> dict[str, Any]:
    return {
        "id": _new_id("si"),
        "object": "subscription_item",
        "price": {
            "id": _new_id("price"),
            "object": "price",
            "product": line.product,
            "unit_amount": line.unit_amount,
            "currency": currency.lower(),
            "recurring": {"interval": "month", "interval_count": 1},
        },
        "quantity": line.quantity,
        "current_period_end": period_end,
    }


def subscription_object(
    *,
    id: str,
    customer: str,
    currency: str,
    lines: Sequence[PriceLine],
    metadata: dict[str, str],
    status: str,
    current_period_end: int,
    trial_end: int | None,
    cancel_at_period_end: bool = False,
    canceled_at: int | None = None,
) -> dict[str, Any]:
    """A subscription in Stripe's shape (the parts Keel reads)."""
    return {
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "currency": currency.lower(),
        "items": {"object": "list", "data": [_item(line, currency, current_period_end) for line in lines]},
        "current_period_end": current_period_end,
        "trial_end": trial_end,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "metadata": dict(metadata),
    }


def _event(type_: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": _new_id("evt"),
        "object": "event",
        "type": type_,
        "created": created,
        "livemode": False,
        "data": {"object": obj},
    }


def signed(event: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, str]:
    """The body and ``Stripe-Signature`` header Stripe would send for ``event``."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, signatures.sign(body, settings.STRIPE_WEBHOOK_SECRET, timestamp or int(time.time()))


def checkout_session_read(token: str) -> dict[str, Any]:
    """The session behind a sandbox checkout link; raises signing.BadSignature (or SignatureExpired)."""
    session: dict[str, Any] = signing.loads(token, salt=CHECKOUT_SALT, max_age=CHECKOUT_MAX_AGE)
    return session


# Saved cards that fail the way Stripe's test payment methods do (any other id is charged successfully), and
# card numbers the sandbox checkout page declines, as Stripe's test cards are.
DECLINING_METHODS = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card"),
    "pm_card_chargeDeclinedStolenCard": ("card_declined", "stolen_card"),
    "pm_card_authenticationRequired": ("authentication_required", "authentication_required"),
}
DECLINING_CARDS = {
    "4000000000000002": ("card_declined", "generic_decline"),
    "4000000000009995": ("card_declined", "insufficient_funds"),
    "4000000000009987": ("card_declined", "lost_card"),
    "4000000000000069": ("expired_card", "expired_card"),
}


def payment_intent_object(
    *,
    id: str,
    amount: int,
    currency: str,
    customer: str,
    payment_method: str,
    metadata: dict[str, str],
    declined: tuple[str, str] | None,
) -> dict[str, Any]:
    """A payment intent in Stripe's shape: succeeded, or back to ``requires_payment_method`` with the error."""
    error = None
    if declined is not None:
        code, decline_code = declined
        error = {"type": "card_error", "code": code, "decline_code": decline_code, "message": "Your card was declined."}
    return {
        "id": id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": 0 if declined else amount,
        "currency": currency.lower(),
        "customer": customer,
        "payment_method": payment_method,
        "status": "requires_payment_method" if declined else "succeeded",
        "last_payment_error": error,
        "metadata": dict(metadata),
    }


def invoice_checkout_read(token: str) -> dict[str, Any]:
    """The request behind a sandbox invoice payment link; raises signing.BadSignature (or SignatureExpired)."""
    session: dict[str, Any] = signing.loads(token, salt=INVOICE_CHECKOUT_SALT, max_age=CHECKOUT_MAX_AGE)
    return session


def invoice_checkout_events(session: dict[str, Any], *, card: str, now: int | None = None) -> list[dict[str, Any]]:
    """What Stripe sends when the payment page is submitted: the payment intent's outcome, and the completed
    session when it succeeded."""
    now = now or int(time.time())
    customer = session["customer"] or _new_id("cus")
    declined = DECLINING_CARDS.get("".join(card.split()))
    intent = payment_intent_object(
        id=_new_id("pi"),
        amount=session["amount"],
        currency=session["currency"],
        customer=customer,
        payment_method=_card_method(card),
        metadata=session["metadata"],
        declined=declined,
    )
    if declined:
        return [_event("payment_intent.payment_failed", intent, now)]
    checkout = {
        "id": session["id"],
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "customer": customer,
        "customer_details": {"email": session["email"]},
        "payment_intent": intent["id"],
        "client_reference_id": session["invoice_id"],
        "metadata": session["metadata"],
        "amount_total": session["amount"],
        "currency": session["currency"].lower(),
    }
    return [_event("payment_intent.succeeded", intent, now), _event("checkout.session.completed", checkout, now)]


def checkout_completion_events(session: dict[str, Any], *, now: int | None = None) -> list[dict[str, Any]]:
    """What Stripe sends when the session is paid, in the order it often sends them: the subscription first."""
    now = now or int(time.time())
    lines = [PriceLine(**line) for line in session["lines"]]
    trial_end = now + session["trial_days"] * 86400 if session["trial_days"] else None
    period_end = trial_end or now + MONTH
    customer, subscription_id = _new_id("cus"), _new_id("sub")
    metadata = {"quote_key": session["quote_key"], "tier": session["tier"]}
    subscription = subscription_object(
        id=subscription_id,
        customer=customer,
        currency=session["currency"],
        lines=lines,
        metadata=metadata,
        status="trialing" if trial_end else "active",
        current_period_end=period_end,
        trial_end=trial_end,
    )
    amount = 0 if trial_end else sum(line.unit_amount * line.quantity for line in lines)
    checkout = {
        "id": session["id"],
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid" if amount else "no_payment_required",
        "customer": customer,
        "customer_email": session["email"],
        "customer_details": {"email": session["email"]},
        "subscription": subscription_id,
        "client_reference_id": session["quote_id"],
        "metadata": metadata,
        "amount_total": amount,
        "currency": session["currency"].lower(),
    }
    invoice = {
        "id": _new_id("in"),
        "object": "invoice",
        "customer": customer,
        "subscription": subscription_id,
        "billing_reason": "subscription_create",
        "status": "paid",
        "amount_paid": amount,
        "currency": session["currency"].lower(),
        "lines": {"data": [{"period": {"start": now, "end": period_end}}]},
    }
    return [
        _event("customer.subscription.created", subscription, now),
        _event("checkout.session.completed", checkout, now),
        _event("invoice.paid", invoice, now),
    ]


class SandboxProvider:
    name = "sandbox"

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = _new_id("cs")
        session = {
            "id": session_id,
            **{key: value for key, value in asdict(request).items() if key != "lines"},
            "lines": [asdict(line) for line in request.lines],
            "success_url": request.success_url.replace("{CHECKOUT_SESSION_ID}", session_id),
        }
        _record("checkout_session_create", {"id": session_id, "quote_id": request.quote_id})
        token = signing.dumps(session, salt=CHECKOUT_SALT, compress=True)
        return CheckoutSession(id=session_id, url=reverse("billing:sandbox_checkout", args=[token]))

    def billing_portal_url(self, *, customer: str, return_url: str) -> str:
        _record("billing_portal_url", {"customer": customer})
        token = signing.dumps({"customer": customer, "return_url": return_url}, salt=PORTAL_SALT)
        return reverse("billing:sandbox_portal", args=[token])

    def _reply(self, subscription: SubscriptionRef, **changes: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "id": subscription.id,
            "customer": subscription.customer,
            "currency": subscription.currency,
            "lines": subscription.lines,
            "metadata": subscription.metadata,
            "status": subscription.status,
            "current_period_end": subscription.current_period_end or int(time.time()) + MONTH,
            "trial_end": subscription.trial_end,
        }
        fields.update(changes)
        return subscription_object(**fields)

    def subscription_replace_items(
        self, *, subscription: SubscriptionRef, lines: Sequence[PriceLine], metadata: dict[str, str]
    ) -> dict[str, Any]:
        _record("subscription_replace_items", {"id": subscription.id, "lines": [asdict(line) for line in lines]})
        return self._reply(subscription, lines=tuple(lines), metadata={**subscription.metadata, **metadata})

    def subscription_cancel(self, *, subscription: SubscriptionRef, at_period_end: bool) -> dict[str, Any]:
        _record("subscription_cancel", {"id": subscription.id, "at_period_end": at_period_end})
        if at_period_end:
            return self._reply(subscription, cancel_at_period_end=True)
        return self._reply(subscription, status="canceled", canceled_at=int(time.time()))

    def subscription_resume(self, *, subscription: SubscriptionRef) -> dict[str, Any]:
        _record("subscription_resume", {"id": subscription.id})
        return self._reply(subscription, cancel_at_period_end=False)

    def payment_intent_create(self, request: ChargeRequest) -> ChargeResult:
        # The same key gets the same intent, as Stripe's idempotency does.
        intent_id = "pi_sbx_" + hashlib.sha256(request.idempotency_key.encode()).hexdigest()[:24]
        declined = DECLINING_METHODS.get(request.payment_method)
        _record("payment_intent_create", {"id": intent_id, "amount": request.amount, "key": request.idempotency_key})
        if declined is None:
            return ChargeResult(intent_id, ChargeStatus.SUCCEEDED, payment_method=request.payment_method)
        code, decline_code = declined
        return ChargeResult(
            intent_id,
            ChargeStatus.FAILED,
            failure_code=code,
            decline_code=decline_code,
            message="Your card was declined.",
            payment_method=request.payment_method,
        )

    def card_label(self, *, payment_method: str) -> str:
        _record("card_label", {"payment_method": payment_method})
        typed = _CARD_METHOD.match(payment_method)
        return card_label(typed.group(1), typed.group(2)) if typed else ""

    def invoice_checkout_create(self, request: InvoiceCheckoutRequest) -> CheckoutSession:
        session_id = _new_id("cs")
        session = {"id": session_id, **asdict(request)}
        _record("invoice_checkout_create", {"id": session_id, "invoice_id": request.invoice_id})
        token = signing.dumps(session, salt=INVOICE_CHECKOUT_SALT, compress=True)
        return CheckoutSession(id=session_id, url=reverse("billing:sandbox_invoice_checkout", args=[token]))
