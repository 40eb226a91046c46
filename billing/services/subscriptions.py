"""Starting a checkout, and what a customer may do to their subscription: open Stripe's billing portal, change
plan, cancel (at the period end or now), withdraw a scheduled cancellation.

Provider calls happen outside any transaction; the reply (Stripe's subscription object) is then applied to the
mirror in one, under the same ordering rule as webhook events, so the later webhook changes nothing further.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from billing.models import Subscription, SubscriptionItem, SubscriptionStatus
from billing.products import billed, product_id, to_minor
from billing.providers import get_provider
from billing.providers.base import CheckoutRequest, PriceLine, ProviderError, SubscriptionRef
from billing.services.mirror import subscription_apply
from quotes import pricing
from quotes.models import OPEN_STATUSES, Plan
from quotes.selectors import quote_by_key, quote_preview
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError, field_error
from tenancy.models import Organization, Tier, User


class QuoteNotFoundError(LookupError):
    """No quote has this key."""


class PaymentProviderError(Exception):
    """The payment provider could not do it; ``message`` is safe to show."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def price_lines(tier: str, lines: Iterable[Any]) -> tuple[PriceLine, ...]:
    """Priced lines (a quote's, or a repriced configuration's) as the provider bills them, monthly."""
    result = []
    for line in lines:
        code = line.code or "custom"
        description, quantity, unit_amount = billed(line.description, line.quantity, line.unit_price, line.amount)
        cents = to_minor(unit_amount) or 0  # billed() returns whole cents
        result.append(
            PriceLine(product=product_id(tier=tier, code=code), name=description, unit_amount=cents, quantity=quantity)
        )
    return tuple(result)


def checkout_start(*, quote_key: str, success_url: str, cancel_url: str) -> str:
    """A checkout for the quote; returns its URL. Unknown keys raise QuoteNotFoundError; a quote no longer open
    (expired, accepted, rejected) raises ConflictError before any session is made."""
    quote = quote_by_key(quote_key)
    if quote is None:
        raise QuoteNotFoundError(quote_key)
    status = quote.effective_status()
    if status not in OPEN_STATUSES:
        raise ConflictError(f"This quote is {status.lower()} and can no longer be paid.", field="quote_key")
    plan = Plan.objects.filter(tier=quote.tier).first()
    request = CheckoutRequest(
        quote_key=quote.quote_key,
        quote_id=str(quote.id),
        email=quote.email,
        tier=quote.tier,
        currency=quote.currency,
        lines=price_lines(quote.tier, quote.lines.all()),
        trial_days=plan.trial_days if plan is not None and not quote.is_custom else 0,
        success_url=success_url,
        cancel_url=cancel_url,
    )
    try:
        return get_provider().checkout_session_create(request).url
    except ProviderError as failure:
        raise PaymentProviderError(failure.message) from failure


# -- the customer's own subscription --------------------------------------------------------------------------------


def _ref(subscription: Subscription) -> SubscriptionRef:
    items = list(SubscriptionItem.objects.for_org(subscription.organization_id).filter(subscription=subscription))
    return SubscriptionRef(
        id=subscription.stripe_subscription_id,
        customer=subscription.stripe_customer_id,
        currency=subscription.currency,
        item_ids=tuple(item.stripe_item_id for item in items if item.stripe_item_id),
        metadata={"tier": subscription.tier.lower()},
        status=subscription.status.lower(),
        current_period_end=int(subscription.current_period_end.timestamp())
        if subscription.current_period_end
        else None,
        trial_end=int(subscription.trial_end.timestamp()) if subscription.trial_end else None,
        lines=tuple(
            PriceLine(
                product=item.product,
                name=item.description,
                unit_amount=to_minor(item.unit_amount) or 0,
                quantity=item.quantity,
            )
            for item in items
        ),
    )


def _apply_reply(
    subscription: Subscription, obj: dict[str, Any], *, action: str, actor: User | None, ip: str | None, **changes: Any
) -> Subscription:
    at = int(time.time())
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription_apply(subscription=locked, obj=obj, at=at)
        audit_record(
            action=action,
            organization=locked.organization,
            actor=actor,
            target=locked,
            changes={key: [None, str(value)] for key, value in changes.items()},
            ip=ip,
        )
    return locked


def _call(operation: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = operation(**kwargs)
    except ProviderError as failure:
        raise PaymentProviderError(failure.message) from failure
    return result


def _require_live(subscription: Subscription) -> None:
    if subscription.status == SubscriptionStatus.CANCELED:
        raise ConflictError("This subscription has been canceled.", field="status")


def billing_portal_url(*, organization: Organization, return_url: str) -> str:
    if not organization.stripe_customer_id:
        raise ConflictError("This organization has no billing account yet: it was not set up through checkout.")
    try:
        return get_provider().billing_portal_url(customer=organization.stripe_customer_id, return_url=return_url)
    except ProviderError as failure:
        raise PaymentProviderError(failure.message) from failure


def subscription_change_plan(
    *, subscription: Subscription, tier: str, actor: User | None = None, ip: str | None = None
) -> Subscription:
    """Move to another self-serve plan, keeping users, devices and add-ons; Stripe prorates the difference."""
    _require_live(subscription)
    if not subscription.configuration:
        raise ConflictError(
            "This subscription was set up by our sales team; ask them to change your plan.", field="tier"
        )
    new_tier = str(tier or "").lower()
    plan = Plan.objects.filter(tier=new_tier, active=True, custom_quote=False).first()
    if plan is None:
        raise field_error("tier", "Choose a plan offered through self-serve checkout; talk to sales for the others.")
    if new_tier.upper() == subscription.tier:
        raise field_error("tier", f"The subscription is already on {plan.name}.")
    if plan.currency != subscription.currency:
        raise field_error("tier", f"{plan.name} is not offered in {subscription.currency}; talk to sales.")
    try:
        priced = quote_preview(tier=new_tier, configuration=subscription.configuration)
    except pricing.PricingError as refused:
        raise ServiceValidationError({"tier": [" ".join(" ".join(msgs) for msgs in refused.errors.values())]}) from None
    obj = _call(
        get_provider().subscription_replace_items,
        subscription=_ref(subscription),
        lines=price_lines(new_tier, priced.lines),
        metadata={"tier": new_tier},
    )
    return _apply_reply(
        subscription, obj, action="subscription.plan_changed", actor=actor, ip=ip, tier=Tier(new_tier.upper()).label
    )


def subscription_cancel(
    *, subscription: Subscription, at_period_end: bool, actor: User | None = None, ip: str | None = None
) -> Subscription:
    _require_live(subscription)
    obj = _call(get_provider().subscription_cancel, subscription=_ref(subscription), at_period_end=at_period_end)
    when = "at_period_end" if at_period_end else "now"
    return _apply_reply(subscription, obj, action="subscription.canceled", actor=actor, ip=ip, when=when)


def subscription_resume(
    *, subscription: Subscription, actor: User | None = None, ip: str | None = None
) -> Subscription:
    """Withdraw a cancellation scheduled for the period end."""
    _require_live(subscription)
    if not subscription.cancel_at_period_end:
        raise ConflictError("No cancellation is scheduled.", field="cancel_at_period_end")
    obj = _call(get_provider().subscription_resume, subscription=_ref(subscription))
    return _apply_reply(
        subscription, obj, action="subscription.resumed", actor=actor, ip=ip, cancel_at_period_end=False
    )
