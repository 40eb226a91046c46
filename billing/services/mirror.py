"""Keeping the subscription mirror right from what Stripe says.

Stripe sends events in no guaranteed order and may resend them. Each subscription remembers the ``created`` time of
the newest event (or provider reply) applied to it (``synced_at``); anything older is skipped, so a late
``customer.subscription.updated`` never moves a subscription back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from billing.models import ItemKind, SmsCreditEntry, Subscription, SubscriptionItem, SubscriptionStatus
from billing.products import from_minor, parse_product
from events.services import publish
from quotes.models import AddOn, AddOnKind, Plan
from tenancy.models import Organization, Tier

logger = logging.getLogger(__name__)

# Stripe's subscription statuses, folded into the five Keel shows.
STATUS_MAP = {
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAUSED,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}
# The event announcing a move into each status (other changes are subscription.updated).
STATUS_EVENTS: dict[str, str] = {
    SubscriptionStatus.CANCELED: "subscription.canceled",
    SubscriptionStatus.PAST_DUE: "subscription.past_due",
}
# Invoice events move the status only along these edges (a paid invoice does not revive a canceled subscription).
INVOICE_MOVES: dict[str, set[str]] = {
    SubscriptionStatus.ACTIVE: {SubscriptionStatus.PAST_DUE},
    SubscriptionStatus.PAST_DUE: {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING},
}
MIRRORED_FIELDS = (
    "status",
    "tier",
    "plan_name",
    "price_monthly",
    "currency",
    "current_period_end",
    "trial_end",
    "cancel_at_period_end",
    "canceled_at",
)


def from_epoch(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return datetime.fromtimestamp(value, tz=UTC)


def as_dict(value: Any) -> dict[str, Any]:
    """A nested part of a provider object, or an empty one when it is missing or not an object."""
    return value if isinstance(value, dict) else {}


def ref_id(value: Any) -> str:
    """An id Stripe sends either bare or as an expanded object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def payload(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.id,
        "status": subscription.status,
        "tier": subscription.tier,
        "plan": subscription.plan_name,
        "price_monthly": str(subscription.price_monthly),
        "currency": subscription.currency,
        "current_period_end": subscription.current_period_end,
        "trial_end": subscription.trial_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
    }


def _items(obj: dict[str, Any]) -> list[dict[str, Any]]:
    data = as_dict(obj.get("items")).get("data")
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _period_end(obj: dict[str, Any]) -> datetime | None:
    # Older API versions carry the period on the subscription, newer ones on each item.
    ends = [obj.get("current_period_end")] + [item.get("current_period_end") for item in _items(obj)]
    dates = [date for date in (from_epoch(end) for end in ends) if date is not None]
    return min(dates) if dates else None


def _describe(kind: str, code: str, tier: str | None, known: dict[str, str], product: str) -> str:
    if product in known:
        return known[product]
    if kind == ItemKind.ADD_ON:
        add_on = AddOn.objects.filter(code=code).first()
        return add_on.name if add_on else code
    if kind == ItemKind.USERS:
        return "Additional users"
    if kind == ItemKind.DEVICES:
        return "Additional devices"
    plan = Plan.objects.filter(tier=tier).first() if tier else None
    return f"{plan.name} plan" if plan else product


def items_replace(subscription: Subscription, rows: list[SubscriptionItem]) -> None:
    SubscriptionItem.objects.for_org(subscription.organization_id).filter(subscription=subscription).delete()
    SubscriptionItem.objects.bulk_create(rows)


def _whole(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _items_from(subscription: Subscription, obj: dict[str, Any]) -> list[SubscriptionItem]:
    current = SubscriptionItem.objects.for_org(subscription.organization_id).filter(subscription=subscription)
    known = {item.product: item.description for item in current}
    rows = []
    for item in _items(obj):
        price = as_dict(item.get("price"))
        product = ref_id(price.get("product"))
        parsed = parse_product(product)
        quantity = _whole(item.get("quantity"), 1)
        unit = _whole(price.get("unit_amount"), 0)
        rows.append(
            SubscriptionItem(
                organization_id=subscription.organization_id,
                subscription=subscription,
                stripe_item_id=str(item.get("id") or ""),
                product=product,
                kind=parsed.kind,
                code=parsed.code,
                description=_describe(parsed.kind, parsed.code, parsed.tier, known, product),
                quantity=max(quantity, 1),
                unit_amount=from_minor(unit),
            )
        )
    return rows


def _tier(obj: dict[str, Any], rows: list[SubscriptionItem], fallback: str) -> str:
    metadata = as_dict(obj.get("metadata"))
    candidates = [str(metadata.get("tier") or "")] + [
        parse_product(row.product).tier or "" for row in rows if row.kind == ItemKind.PLAN
    ]
    for candidate in candidates:
        if candidate.upper() in Tier.values:
            return candidate.upper()
    return fallback


def subscription_apply(*, subscription: Subscription, obj: dict[str, Any], at: int) -> bool:
    """Apply Stripe's subscription object, as of ``at`` (epoch seconds), to the locked ``subscription``.

    Returns False, changing nothing, when something newer was applied already. Publishes
    ``subscription.updated`` (or ``.canceled`` / ``.past_due`` on moving into those) when anything changed, and
    keeps the organization's tier in step with the plan.
    """
    if at < subscription.synced_at:
        logger.info("skipping stale update of subscription %s (%s < %s)", subscription.pk, at, subscription.synced_at)
        return False
    before = {field: getattr(subscription, field) for field in MIRRORED_FIELDS}
    rows = _items_from(subscription, obj)
    status = STATUS_MAP.get(str(obj.get("status") or ""))
    if status is not None:
        subscription.status = status
    if rows:
        items_replace(subscription, rows)
        subscription.price_monthly = sum((row.unit_amount * row.quantity for row in rows), from_minor(0))
        currency = next((str(as_dict(item.get("price")).get("currency") or "") for item in _items(obj)), "")
        subscription.currency = currency.upper() or subscription.currency
    subscription.tier = _tier(obj, rows, subscription.tier)
    subscription.plan_name = Tier(subscription.tier).label
    subscription.current_period_end = _period_end(obj) or subscription.current_period_end
    subscription.trial_end = from_epoch(obj.get("trial_end"))
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    subscription.canceled_at = from_epoch(obj.get("canceled_at")) or from_epoch(obj.get("ended_at"))
    subscription.synced_at = at
    subscription.save()
    changed = [field for field in MIRRORED_FIELDS if getattr(subscription, field) != before[field]]
    if changed:
        _announce(subscription, before_status=before["status"], changed=changed)
    if "tier" in changed:
        Organization.objects.filter(pk=subscription.organization_id).update(tier=subscription.tier)
    return True


def status_apply(*, subscription: Subscription, status: str, at: int, period_end: datetime | None = None) -> bool:
    """An invoice event moved the status (paid → active, failed → past due); same ordering rule as above."""
    if at < subscription.synced_at:
        return False
    before_status = subscription.status
    changed = []
    if before_status in INVOICE_MOVES.get(status, ()):
        subscription.status = status
        changed.append("status")
    if period_end is not None and period_end != subscription.current_period_end:
        subscription.current_period_end = period_end
        changed.append("current_period_end")
    subscription.synced_at = at
    subscription.save(update_fields=["status", "current_period_end", "synced_at", "updated_at"])
    if changed:
        _announce(subscription, before_status=before_status, changed=changed)
    return True


def _announce(subscription: Subscription, *, before_status: str, changed: list[str]) -> None:
    moved_to = subscription.status if subscription.status != before_status else None
    event = STATUS_EVENTS.get(moved_to or "", "subscription.updated")
    publish(subscription.organization, event, {**payload(subscription), "changed": changed})


def sms_credit(*, subscription: Subscription, source: str) -> int:
    """Credit the organization's SMS budget with every SMS pack on the subscription, once per ``source`` (the
    checkout session, or a renewal invoice). Returns the credits added by this call."""
    packs = {add_on.code: add_on for add_on in AddOn.objects.filter(kind=AddOnKind.SMS_PACK)}
    added = 0
    items = SubscriptionItem.objects.for_org(subscription.organization_id).filter(
        subscription=subscription, kind=ItemKind.ADD_ON, code__in=list(packs)
    )
    for item in items:
        credits = packs[item.code].sms_credits * item.quantity
        _, created = SmsCreditEntry.objects.get_or_create(
            source_key=f"{source}:{item.code}",
            defaults={
                "organization_id": subscription.organization_id,
                "credits": credits,
                "reason": f"{item.quantity} x {packs[item.code].name}",
            },
        )
        added += credits if created else 0
    return added
