"""What each Stripe event type does. Registered with ``billing.services.webhooks.handles``; each runs inside the
transaction that marks its event processed, and returns a short account of what it did."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from billing.models import AttemptStatus, PaymentAttempt, StripeEvent, Subscription, SubscriptionStatus
from billing.products import from_minor
from billing.providers.base import ChargeResult, ChargeStatus, intent_result
from billing.services.cards import card_save
from billing.services.collection import attempt_apply, attempt_for, attempt_refund_record
from billing.services.mirror import as_dict, from_epoch, ref_id, sms_credit, status_apply, subscription_apply
from billing.services.provisioning import SUBSCRIPTION_EVENTS, checkout_provision
from billing.services.webhooks import handles


@handles("checkout.session.completed")
def checkout_completed(event: StripeEvent) -> str:
    """A subscription checkout provisions an organization; a payment-mode checkout pays an invoice."""
    session = event.payload["data"]["object"]
    if session.get("mode") != "payment":
        return checkout_provision(event)
    attempt = attempt_for(as_dict(session.get("metadata")), ref_id(session.get("payment_intent")))
    if attempt is None:
        return "not a Keel invoice payment"
    intent = ref_id(session.get("payment_intent"))
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        checkout_session_id=str(session.get("id") or "")[:200], payment_intent_id=intent or attempt.payment_intent_id
    )
    if session.get("payment_status") != "paid":
        return f"attempt {attempt.number}: checkout complete, payment {session.get('payment_status')}"
    updated = attempt_apply(attempt_id=attempt.pk, result=ChargeResult(intent, ChargeStatus.SUCCEEDED), now=_at(event))
    return f"attempt {updated.number}: {updated.status}"


@handles("checkout.session.expired")
def checkout_expired(event: StripeEvent) -> str:
    session = event.payload["data"]["object"]
    attempt = attempt_for(as_dict(session.get("metadata")), "")
    if attempt is None:
        return "not a Keel invoice payment"
    result = ChargeResult(ref_id(session.get("payment_intent")), ChargeStatus.CANCELED)
    return f"attempt {attempt_apply(attempt_id=attempt.pk, result=result, now=_at(event)).status}"


@handles(
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.canceled",
)
def payment_intent_changed(event: StripeEvent) -> str:
    intent = event.payload["data"]["object"]
    metadata = as_dict(intent.get("metadata"))
    attempt = attempt_for(metadata, ref_id(intent.get("id")))
    if attempt is None:
        return "not a Keel invoice payment"
    result = intent_result(intent)
    updated = attempt_apply(attempt_id=attempt.pk, result=result, now=_at(event))
    if updated.status == AttemptStatus.SUCCEEDED and metadata.get("keel_save_card") == "1":
        card_save(
            organization_id=updated.organization_id,
            payment_method=result.payment_method,
            customer=ref_id(intent.get("customer")),
        )
    return f"attempt {updated.number}: {updated.status}"


@handles("charge.refunded")
def charge_refunded(event: StripeEvent) -> str:
    """A refund made in Stripe (the dashboard, or its API) on a payment of a Keel invoice: ``amount_refunded`` is
    the charge's running total, so a repeated or late event changes nothing."""
    charge = event.payload["data"]["object"]
    intent = ref_id(charge.get("payment_intent"))
    refunded = charge.get("amount_refunded")
    if not intent or not isinstance(refunded, int):
        return "no payment intent or refunded amount"
    return attempt_refund_record(payment_intent_id=intent, refunded=from_minor(refunded), now=_at(event))


def _at(event: StripeEvent) -> Any:
    return from_epoch(event.created) or timezone.now()


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
