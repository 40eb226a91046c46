"""What Keel asks of a payment provider, in plain values.

Subscriptions come back as the provider's subscription object (a dict in Stripe's shape: ``id``, ``customer``,
``status``, ``items.data[].price.{product, unit_amount, currency}``, ``quantity``, ``current_period_end``,
``trial_end``, ``cancel_at_period_end``, ``canceled_at``, ``metadata``), so the code that applies a webhook event
also applies a provider's reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class ProviderError(Exception):
    """The provider refused or could not be reached; ``message`` is safe to show to staff."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


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
