"""What each Stripe event type does. Registered with ``billing.services.webhooks.handles``; each runs inside the
transaction that marks its event processed, and returns a short account of what it did."""

from __future__ import annotations

from typing import Any

from billing.models import StripeEvent, Subscription, SubscriptionStatus
from billing.services.mirror import as_dict, from_epoch, ref_id, sms_credit, status_apply, subscription_apply
from billing.services.provisioning import SUBSCRIPTION_EVENTS, checkout_provision
from billing.services.webhooks import handles

handles("checkout.session.completed")(checkout_provision)


def _locked(stripe_subscription_id: str) -> Subscription | None:
    if not stripe_subscription_id:
        return None
    return Subscription.objects.select_for_update().filter(stripe_subscription_id=stripe_subscription_id).first()


@handles(*SUBSCRIPTION_EVENTS, "customer.subscription.paused", "customer.subscription.resumed")
def subscription_changed(event: StripeEvent) -> str:
    obj = event.payload["data"]["object"]
    subscription = _locked(ref_id(obj.get("id")))
    if subscription is None:
        # Before its checkout is provisioned: provisioning applies the newest such event it finds stored.
        return "no subscription yet; kept for provisioning"
    applied = subscription_apply(subscription=subscription, obj=obj, at=event.created)
    return f"{'applied' if applied else 'skipped (older than the mirror)'}: {subscription.status}"


def _invoice_subscription(invoice: dict[str, Any]) -> str:
    # API versions before 2025-03 name it on the invoice; later ones under parent.subscription_details.
    direct = ref_id(invoice.get("subscription"))
    if direct:
        return direct
    details = as_dict(as_dict(invoice.get("parent")).get("subscription_details"))
    return ref_id(details.get("subscription"))


def _invoice_period_end(invoice: dict[str, Any]) -> Any:
    lines = as_dict(invoice.get("lines")).get("data")
    ends = [as_dict(as_dict(line).get("period")).get("end") for line in lines] if isinstance(lines, list) else []
    dates = [date for date in (from_epoch(end) for end in ends) if date is not None]
    return max(dates) if dates else None


@handles("invoice.paid")
def invoice_paid(event: StripeEvent) -> str:
    invoice = event.payload["data"]["object"]
    subscription = _locked(_invoice_subscription(invoice))
    if subscription is None:
        return "not a subscription Keel knows"
    applied = status_apply(
        subscription=subscription,
        status=SubscriptionStatus.ACTIVE,
        at=event.created,
        period_end=_invoice_period_end(invoice),
    )
    credited = 0
    if invoice.get("billing_reason") == "subscription_cycle":  # the first period's packs came with the checkout
        credited = sms_credit(subscription=subscription, source=f"invoice:{ref_id(invoice.get('id'))}")
    return f"paid ({'applied' if applied else 'older than the mirror'}); {credited} SMS credits"


@handles("invoice.payment_failed")
def invoice_payment_failed(event: StripeEvent) -> str:
    invoice = event.payload["data"]["object"]
    subscription = _locked(_invoice_subscription(invoice))
    if subscription is None:
        return "not a subscription Keel knows"
    applied = status_apply(subscription=subscription, status=SubscriptionStatus.PAST_DUE, at=event.created)
    return f"payment failed ({'applied' if applied else 'older than the mirror'})"
