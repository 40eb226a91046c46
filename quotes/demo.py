"""Demo quotes in every status, for `manage.py seed_demo` (idempotent). Run after the qualification demo: self-serve
quotes need the demo prospects' approved questionnaires. Each demo organization gets the accepted quote it was
provisioned from, written by staff from the price book in the organization's currency."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from quotes import pricing, services
from quotes.models import AddOn, Plan, Quote
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Membership, Organization, Role, User

# email, tier, configuration, what happens next
PROSPECT_QUOTES: list[tuple[str, str, dict[str, Any], str]] = [
    ("olivia@brightdental.test", "core_plus", {"users": 8, "devices": 12, "add_ons": []}, "expire"),
    ("olivia@brightdental.test", "core_plus", {"users": 12, "devices": 20, "add_ons": ["backup_tb"]}, "draft"),
    ("lee@harbourlaw.test", "core_plus", {"users": 6, "devices": 10, "add_ons": ["sms_pack_250"]}, "send"),
    ("ravi@medigroup.test", "premium", {"users": 60, "devices": 90, "add_ons": ["after_hours_support"]}, "reject"),
]
ENTERPRISE_LINES = [
    {"code": "base", "description": "Enterprise managed service, 700 endpoints", "quantity": 1, "unit_price": "18500"},
    {"code": "soc", "description": "24x7 security operations centre", "quantity": 1, "unit_price": "6500"},
    {"code": "onsite", "description": "Onsite engineer days", "quantity": 4, "unit_price": "1250"},
]
ORG_CONFIGURATION = {"users": 30, "devices": 45, "add_ons": [{"code": "backup_tb", "quantity": 2}, "sms_pack_250"]}


def _prospect_quotes(lines: list[str], staff: User | None) -> None:
    done = set(Quote.objects.filter(organization=None, is_custom=False).values_list("email", flat=True))
    for email, tier, configuration, outcome in PROSPECT_QUOTES:
        if email in done:
            continue
        try:
            quote = services.quote_create(email=email, tier=tier, configuration=configuration)
        except (services.QuoteNotAllowedError, ServiceValidationError) as exc:
            lines.append(f"(skipped {email}: {exc})")
            continue
        if outcome == "send":
            services.quote_send(quote=quote, actor=staff)
        elif outcome == "reject":
            services.quote_reject(quote=quote, reason="Chose to stay with their current provider")
        elif outcome == "expire":
            services.quote_expire(quote=quote)
    if staff is not None and not Quote.objects.filter(email="cio@megacorp.test", is_custom=True).exists():
        quote = services.quote_create_custom(
            email="cio@megacorp.test", tier="enterprise", lines=ENTERPRISE_LINES, created_by=staff
        )
        services.quote_send(quote=quote, actor=staff)


def _organization_quotes(staff: User) -> None:
    catalogue = {add_on.code: add_on.as_price() for add_on in AddOn.objects.all()}
    for org in Organization.objects.filter(quotes__isnull=True):
        owner = Membership.objects.filter(organization=org, role=Role.OWNER).select_related("user").first()
        plan = Plan.objects.filter(tier=org.tier.lower()).first()
        if owner is None or plan is None:
            continue
        priced = pricing.price_quote(plan.as_price(), catalogue, ORG_CONFIGURATION)
        quote = services.quote_create_custom(
            email=owner.user.email,
            tier=plan.tier,
            currency=org.currency,
            created_by=staff,
            lines=[
                pricing.CustomLine(line.description, line.quantity, line.unit_price, line.code) for line in priced.lines
            ],
        )
        services.quote_send(quote=quote, actor=staff)
        services.quote_mark_accepted(quote=quote, organization=org)


@transaction.atomic
def seed() -> list[str]:
    lines: list[str] = []
    staff = User.objects.filter(is_staff=True, groups__name="Sales").order_by("email").first()
    try:
        _prospect_quotes(lines, staff)
        if staff is not None:
            _organization_quotes(staff)
    except ConflictError as exc:  # a demo row changed by hand: leave it be
        lines.append(f"(skipped: {exc.message})")
    for quote in Quote.objects.select_related("organization").order_by("email", "created_at"):
        who = quote.organization.name if quote.organization else quote.email
        price = f"{quote.currency} {quote.price_monthly:>9}"
        lines.append(f"{quote.get_tier_display():10} {quote.status:8} {price}  {who}  {quote.url}")
    return lines
