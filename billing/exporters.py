"""The billing section of the organization export."""

from __future__ import annotations

from typing import Any

from billing.models import SmsCreditEntry, Subscription
from tenancy.export import register
from tenancy.models import Organization


@register("billing")
def export_billing(org: Organization) -> dict[str, Any]:
    subscriptions = Subscription.objects.for_org(org).prefetch_related("items")
    return {
        "subscriptions": [
            {
                "plan": sub.plan_name,
                "tier": sub.tier,
                "status": sub.status,
                "price_monthly": str(sub.price_monthly),
                "currency": sub.currency,
                "next_billing_date": sub.current_period_end.isoformat() if sub.current_period_end else None,
                "trial_end": sub.trial_end.isoformat() if sub.trial_end else None,
                "cancel_at_period_end": sub.cancel_at_period_end,
                "created_at": sub.created_at.isoformat(),
                "items": [
                    {"description": item.description, "quantity": item.quantity, "unit_amount": str(item.unit_amount)}
                    for item in sub.items.all()
                ],
            }
            for sub in subscriptions
        ],
        "sms_credits": [
            {"credits": entry.credits, "reason": entry.reason, "at": entry.created_at.isoformat()}
            for entry in SmsCreditEntry.objects.for_org(org)
        ],
    }
