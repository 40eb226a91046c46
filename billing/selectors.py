"""Read-only questions about an organization's billing (the portal, the API, other apps)."""

from __future__ import annotations

from django.db.models import Case, IntegerField, Sum, Value, When

from billing.models import SmsCreditEntry, Subscription, SubscriptionStatus
from tenancy.models import Membership, Organization, Role


def current_subscription(organization: Organization) -> Subscription | None:
    """The organization's live subscription (the newest, should there be several), else its newest canceled one;
    items prefetched."""
    live_first = Case(
        When(status=SubscriptionStatus.CANCELED, then=Value(1)), default=Value(0), output_field=IntegerField()
    )
    return (
        Subscription.objects.for_org(organization).prefetch_related("items").order_by(live_first, "-created_at").first()
    )


def sms_credit_balance(organization: Organization) -> int:
    """SMS credits bought less credits spent."""
    total = SmsCreditEntry.objects.for_org(organization).aggregate(total=Sum("credits"))["total"]
    return int(total or 0)


def checkout_provisioned(session_id: str) -> bool:
    """Has the checkout with this session id become a customer yet?"""
    return bool(session_id) and Subscription.objects.filter(checkout_session_id=session_id).exists()


def billing_contacts(organization: Organization) -> list[str]:
    """Who receives an organization's invoices, payment reminders and contract notices: the addresses it named
    (``Organization.invoice_emails``, an accounts department, say), else its active owners and admins."""
    if organization.invoice_emails:
        return list(organization.invoice_emails)
    return sorted(
        Membership.objects.filter(organization=organization, role__in=[Role.OWNER, Role.ADMIN], user__is_active=True)
        .values_list("user__email", flat=True)
        .distinct()
    )
