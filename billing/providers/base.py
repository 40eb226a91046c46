"""What Keel asks of a payment provider, in plain values.

Subscriptions come back as the provider's subscription object (a dict in Stripe's shape: ``id``, ``customer``,
``status``, ``items.data[].price.{product, unit_amount, currency}``, ``quantity``, ``current_period_end``,
``trial_end``, ``cancel_at_period_end``, ``canceled_at``, ``metadata``), so the code that applies a webhook event
also applies a provider's reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol


class ProviderError(Exception):
    """The provider refused or could not be reached; ``message`` is safe to show to staff. ``retryable``: the same
    request may work later (a rate limit, an outage); ``retry_after``: the wait the provider asked for before then
    (its ``Retry-After`` on a 429 or 503), if it named one; ``rate_limited``: the provider refused because of how
    often it is asked (a 429), so the next requests would be refused too."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: timedelta | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable or rate_limited
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class PriceLine:
    """One recurring monthly line. ``product`` is a stable product id (``keel-<key>``) the provider keeps a product
    under, so a subscription item can be traced back to the plan or add-on it bills."""

    product: str
    name: str
    unit_amount: int  # in the currency's minor unit (cents)
    quantity: int


@dataclass(frozen=True)
class CheckoutRequest:
    quote_key: str
    quote_id: str
    email: str
    tier: str
    currency: str  # ISO 4217, upper case
    lines: tuple[PriceLine, ...]
    trial_days: int
    success_url: str  # may contain {CHECKOUT_SESSION_ID}
    cancel_url: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class SubscriptionRef:
    """What Keel knows of a subscription when it asks the provider to change it."""

    id: str
    customer: str
    currency: str
    item_ids: tuple[str, ...]
    metadata: dict[str, str]
    # The rest is what the mirror holds; the sandbox builds its replies from it (Stripe has its own record).
    status: str = "active"
    current_period_end: int | None = None
    trial_end: int | None = None
    lines: tuple[PriceLine, ...] = ()


@dataclass(frozen=True)
class ChargeRequest:
    """Charge a saved card off-session (the customer is not there). The same ``idempotency_key`` always means the
    same charge: asking twice (a crash, a timeout) replays the first answer instead of charging twice."""

    customer: str
    payment_method: str
    amount: int  # in the currency's minor unit
    currency: str
    description: str
    idempotency_key: str
    metadata: dict[str, str]


class ChargeStatus:
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    REQUIRES_ACTION = "requires_action"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True)
class ChargeResult:
    payment_intent_id: str
    status: str  # a ChargeStatus value
    failure_code: str = ""
    decline_code: str = ""
    message: str = ""
    payment_method: str = ""


def intent_result(intent: dict[str, Any]) -> ChargeResult:
    """A payment intent in Stripe's shape (a reply, or a ``payment_intent.*`` event's object) as a ChargeResult."""
    status = str(intent.get("status") or "")
    error = intent.get("last_payment_error") or {}
    method = intent.get("payment_method")
    method_id = method.get("id") if isinstance(method, dict) else method
    outcome = {
        "succeeded": ChargeStatus.SUCCEEDED,
        "processing": ChargeStatus.PROCESSING,
        "requires_action": ChargeStatus.REQUIRES_ACTION,
        "requires_confirmation": ChargeStatus.REQUIRES_ACTION,
        "canceled": ChargeStatus.CANCELED,
    }.get(status, ChargeStatus.FAILED)  # requires_payment_method: the card was declined
    return ChargeResult(
        payment_intent_id=str(intent.get("id") or ""),
        status=outcome,
        failure_code=str(error.get("code") or "") if isinstance(error, dict) else "",
        decline_code=str(error.get("decline_code") or "") if isinstance(error, dict) else "",
        message=" ".join(str(error.get("message") or "").split())[:500] if isinstance(error, dict) else "",
        payment_method=str(method_id or ""),
    )


@dataclass(frozen=True)
class InvoiceCheckoutRequest:
    """A hosted payment page for what an invoice still owes. ``customer`` is the organization's provider customer,
    if it has one; otherwise ``email`` prefills the page and the provider makes a customer."""

    invoice_id: str
    reference: str
    organization_id: str
    attempt: int
    amount: int  # in the currency's minor unit
    currency: str
    email: str
    customer: str
    save_card: bool
    success_url: str
    cancel_url: str
    idempotency_key: str
    metadata: dict[str, str]


CARD_BRANDS = {
    "amex": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}
LABEL_LIMIT = 60


def card_label(brand: str, last4: str) -> str:
    """ "Visa ending 4242": the card's brand as its owner knows it, and its last four digits; "" without them."""
    last4 = "".join(character for character in str(last4) if character.isdigit())[-4:]
    if len(last4) != 4:
        return ""
    key = str(brand or "").strip().lower()
    name = CARD_BRANDS.get(key) or key.replace("_", " ").title() or "Card"
    return f"{name} ending {last4}"[:LABEL_LIMIT]


class PaymentProvider(Protocol):
    name: str

    def checkout_session_create(self, request: CheckoutRequest) -> CheckoutSession:
        """A hosted checkout page in subscription mode for ``request.lines``, the email prefilled, the quote key
        in the session's and the subscription's metadata."""
        ...

    def billing_portal_url(self, *, customer: str, return_url: str) -> str:
        """A one-off link to the provider's customer billing portal (payment methods, invoices)."""
        ...

    def subscription_replace_items(
        self, *, subscription: SubscriptionRef, lines: Sequence[PriceLine], metadata: dict[str, str]
    ) -> dict[str, Any]:
        """Swap every item of the subscription for ``lines`` (a plan change), prorated; returns the subscription."""
        ...

    def subscription_cancel(self, *, subscription: SubscriptionRef, at_period_end: bool) -> dict[str, Any]:
        """Cancel now, or at the end of the paid period (undone by ``subscription_resume``)."""
        ...

    def subscription_resume(self, *, subscription: SubscriptionRef) -> dict[str, Any]:
        """Withdraw a cancellation scheduled for the period end."""
        ...

    def payment_intent_create(self, request: ChargeRequest) -> ChargeResult:
        """Charge a saved card off-session and confirm at once. A declined card is a result (``failed``, with the
        codes), not an error; ``ProviderError`` means the provider could not answer."""
        ...

    def invoice_checkout_create(self, request: InvoiceCheckoutRequest) -> CheckoutSession:
        """A hosted checkout page in payment mode for one invoice; ``request.metadata`` goes on the session and on
        its payment intent, so the ``payment_intent.*`` webhooks find the attempt."""
        ...

    def card_label(self, *, payment_method: str) -> str:
        """How a saved payment method is shown to its owner ("Visa ending 4242"); "" when it is not a card."""
        ...
