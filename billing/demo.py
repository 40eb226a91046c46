"""A subscription for each demo organization, for `manage.py seed_demo` (idempotent). Run after the quotes demo:
each subscription mirrors the accepted quote its organization was provisioned from. The Stripe ids are made up
(``sub_demo_…``); with the sandbox provider the Billing page's actions work on them."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Subscription, SubscriptionItem, SubscriptionStatus
from billing.services.mirror import sms_credit
from billing.services.provisioning import items_from_quote
from quotes.demo import ORG_CONFIGURATION
from quotes.models import Quote, QuoteStatus
from tenancy.models import Organization, Tier

# slug -> (status, days to the next billing date) — one of each state the Billing page shows differently.
STATES = {
    "acme": (SubscriptionStatus.ACTIVE, 12),
    "initech": (SubscriptionStatus.TRIALING, 9),
    "globex": (SubscriptionStatus.PAST_DUE, 3),
}


@transaction.atomic
def seed() -> list[str]:
    lines = []
    now = timezone.now()
    for org in Organization.objects.filter(slug__in=STATES).order_by("slug"):
        subscription = Subscription.objects.for_org(org).first()
        if subscription is None:
            quote = (
                Quote.objects.filter(organization=org, status=QuoteStatus.ACCEPTED).prefetch_related("lines").first()
            )
            if quote is None:
                continue
            status, days = STATES[org.slug]
            subscription = Subscription.objects.create(
                organization=org,
                stripe_subscription_id=f"sub_demo_{org.slug}",
                stripe_customer_id=f"cus_demo_{org.slug}",
                quote=quote,
                tier=org.tier,
                plan_name=Tier(org.tier).label,
                status=status,
                price_monthly=quote.price_monthly,
                currency=quote.currency,
                # Priced from the price book (see quotes.demo), so the plan can change; Enterprise goes via sales.
                configuration={} if org.tier == Tier.ENTERPRISE else ORG_CONFIGURATION,
                current_period_end=now + timedelta(days=days),
                trial_end=now + timedelta(days=days) if status == SubscriptionStatus.TRIALING else None,
            )
            SubscriptionItem.objects.bulk_create(items_from_quote(subscription, quote))
            Organization.objects.filter(pk=org.pk, stripe_customer_id="").update(
                stripe_customer_id=f"cus_demo_{org.slug}"
            )
            sms_credit(subscription=subscription, source=f"demo:{org.slug}")
        lines.append(
            f"{org.name:20} {subscription.plan_name:10} {subscription.status:9} "
            f"{subscription.currency} {subscription.price_monthly:>9}/month"
        )
    return lines
