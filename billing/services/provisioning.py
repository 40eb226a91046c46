"""Turning a paid checkout into a customer: organization, owner, membership, subscription, welcome email.

Exactly once per checkout session: the quote row is locked first, and a subscription already recorded for the
session (or for the Stripe subscription) makes a repeat a no-op. Everything happens in the transaction that marks
the Stripe event processed, so a failure leaves nothing behind and the event is retried.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from billing.models import StripeEvent, Subscription, SubscriptionItem, SubscriptionStatus
from billing.products import CUSTOM_CODE, billed, parse_product, product_id
from billing.services.mirror import as_dict, from_epoch, payload, ref_id, sms_credit, subscription_apply
from events.services import publish
from notifications.rendering import date_text
from notifications.services import notify
from qualification.models import Qualification
from qualification.services import qualification_mark_converted
from quotes.models import Plan, Quote
from quotes.services import quote_mark_accepted
from tenancy.models import Organization, Tier, User
from tenancy.services.accounts import welcome_link
from tenancy.services.organizations import organization_create

logger = logging.getLogger(__name__)

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
# The checkout's return page may sign a brand-new owner in once, within this long of provisioning.
SIGN_IN_WINDOW = timedelta(hours=1)


class ProvisioningError(Exception):
    """The checkout cannot be provisioned as sent (no such quote, not a subscription); staff must look."""


def _unique_slug(name: str) -> str:
    base = slugify(name)[:50] or "customer"
    slug, counter = base, 1
    while Organization.objects.filter(slug=slug).exists():
        counter += 1
        slug = f"{base}-{counter}"
    return slug


def _organization_name(quote: Quote, qualification: Qualification | None, email: str) -> str:
    if qualification is not None and qualification.company_name.strip():
        return qualification.company_name.strip()
    return email.partition("@")[2] or email


def _owner(email: str, full_name: str) -> tuple[User, bool]:
    user = User.objects.filter(email__iexact=email).first()
    if user is not None:
        return user, False
    # No password: the owner signs in with the welcome link (or a magic link) and may set one later.
    return User.objects.create_user(email=email, password=None, full_name=full_name[:150]), True


def items_from_quote(subscription: Subscription, quote: Quote) -> list[SubscriptionItem]:
    rows = []
    for line in quote.lines.all():
        code = line.code if line.code else CUSTOM_CODE
        product = product_id(tier=quote.tier, code=code)
        description, quantity, unit_amount = billed(line.description, line.quantity, line.unit_price, line.amount)
        rows.append(
            SubscriptionItem(
                organization_id=subscription.organization_id,
                subscription=subscription,
                product=product,
                kind=parse_product(product).kind,
                code=parse_product(product).code,
                description=description,
                quantity=quantity,
                unit_amount=unit_amount,
            )
        )
    return rows


def _welcome(subscription: Subscription, organization: Organization, user: User, created: bool) -> None:
    # The owner is a member now; the welcome's email is required (its sign-in link is sealed: emailed, never stored
    # readable), and it is sent once per subscription.
    notify(
        organization=organization,
        event_type="account.welcome",
        users=[user],
        template="welcome",
        key=f"welcome:{subscription.pk}",
        context={
            "user_name": user.get_short_name(),
            "organization_name": organization.name,
            "plan_name": subscription.plan_name,
            "price_monthly": f"{subscription.price_monthly}",
            "currency": subscription.currency,
            "trial_end": date_text(subscription.trial_end, "j F Y"),
            "new_account": created,
            "valid_days": max(1, settings.WELCOME_LINK_MAX_AGE // 86400),
            "url": "/dashboard/",
        },
        sealed={"path": welcome_link(user)},
    )


def checkout_provision(event: StripeEvent) -> str:
    """Handle ``checkout.session.completed``. Returns what it did."""
    session: dict[str, Any] = event.payload["data"]["object"]
    if session.get("mode") != "subscription":
        return "not a subscription checkout"
    session_id = str(session.get("id") or "")
    metadata = as_dict(session.get("metadata"))
    quote_key = str(metadata.get("quote_key") or "")
    stripe_subscription = ref_id(session.get("subscription"))
    customer = ref_id(session.get("customer"))
    if not (session_id and quote_key and stripe_subscription and customer):
        raise ProvisioningError("The session lacks its id, quote_key metadata, subscription or customer.")
    quote = Quote.objects.select_for_update().filter(quote_key=quote_key).first()
    if quote is None:
        raise ProvisioningError("No quote has the key in the session's metadata.")
    done = (
        Subscription.objects.filter(checkout_session_id=session_id).first()
        or Subscription.objects.filter(stripe_subscription_id=stripe_subscription).first()
    )
    if done is not None:
        return f"already provisioned as {done.organization_id}"

    details = as_dict(session.get("customer_details"))
    email = str(details.get("email") or session.get("customer_email") or quote.email).strip().lower()
    qualification = quote.qualification or (
        Qualification.objects.filter(customer_email__iexact=quote.email, tier=quote.tier).first()
    )
    user, created = _owner(email, (qualification.name if qualification else "") or str(details.get("name") or ""))
    tier = quote.tier.upper() if quote.tier.upper() in Tier.values else Tier.CORE_PLUS
    name = _organization_name(quote, qualification, email)
    organization = organization_create(
        name=name, slug=_unique_slug(name), tier=tier, currency=quote.currency, owner=user
    )
    Organization.objects.filter(pk=organization.pk).update(stripe_customer_id=customer)
    organization.stripe_customer_id = customer

    plan = Plan.objects.filter(tier=quote.tier).first()
    trial_days = plan.trial_days if plan is not None and not quote.is_custom else 0
    now = timezone.now()
    subscription = Subscription.objects.create(
        organization=organization,
        stripe_subscription_id=stripe_subscription,
        stripe_customer_id=customer,
        checkout_session_id=session_id,
        quote=quote,
        tier=tier,
        plan_name=Tier(tier).label,
        status=SubscriptionStatus.TRIALING if trial_days else SubscriptionStatus.ACTIVE,
        price_monthly=quote.price_monthly,
        currency=quote.currency,
        configuration={} if quote.is_custom else dict(quote.configuration),
        trial_end=now + timedelta(days=trial_days) if trial_days else None,
        owner=user,
        owner_created=created,
    )
    SubscriptionItem.objects.bulk_create(items_from_quote(subscription, quote))
    # Stripe often announces the subscription before the checkout: apply the newest such event already stored.
    latest = (
        StripeEvent.objects.filter(object_id=stripe_subscription, type__in=SUBSCRIPTION_EVENTS)
        .exclude(payload={})  # one whose body was forgotten (msp/retention.py) has nothing left to apply
        .order_by("-created", "-pk")
        .first()
    )
    if latest is not None:
        subscription_apply(subscription=subscription, obj=latest.payload["data"]["object"], at=latest.created)
    elif subscription.trial_end is None:
        subscription.current_period_end = from_epoch(int((now + timedelta(days=30)).timestamp()))
        subscription.save(update_fields=["current_period_end", "updated_at"])

    quote_mark_accepted(quote=quote, organization=organization)
    qualification_mark_converted(email=quote.email, tier=quote.tier, organization=organization)
    sms_credit(subscription=subscription, source=f"checkout:{session_id}")
    publish(organization, "subscription.created", payload(subscription))
    _welcome(subscription, organization, user, created)
    return f"provisioned {organization.slug}"


def checkout_sign_in_claim(*, session_id: str) -> User | None:
    """The checkout's return page: the new owner, once, soon after provisioning; None otherwise.

    Only an account this checkout created is signed in this way (an existing account keeps its own sign-in,
    second factor included), and only once: the claim is a conditional UPDATE that one request wins.
    """
    if not session_id:
        return None
    now = timezone.now()
    with transaction.atomic():
        claimed = Subscription.objects.filter(
            checkout_session_id=session_id,
            owner_created=True,
            sign_in_claimed_at__isnull=True,
            created_at__gte=now - SIGN_IN_WINDOW,
        ).update(sign_in_claimed_at=now)
        if claimed != 1:
            return None
        subscription = Subscription.objects.select_related("owner").get(checkout_session_id=session_id)
        return subscription.owner
