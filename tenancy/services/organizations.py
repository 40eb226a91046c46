from __future__ import annotations

import hashlib
import zoneinfo
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.text import slugify

from events.services import publish
from tenancy import export
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError, field_error
from tenancy.models import HEX_COLOUR, Membership, Organization, OrgStatus, Partner, Role, Tier, User
from tenancy.security_alerts import organization_alert, who
from tenancy.services.members import member_announce

LOGO_MAX_BYTES = 256 * 1024
LOGO_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}
UPDATABLE_FIELDS = ("name", "tier", "timezone", "currency", "country", "require_mfa", "partner")
INVOICE_EMAILS_MAX = 5


def _validate_common(fields: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean = dict(fields)
    if "name" in clean:
        clean["name"] = (clean["name"] or "").strip()
        if not clean["name"]:
            errors["name"] = ["Name is required."]
    if "tier" in clean and clean["tier"] not in Tier.values:
        errors["tier"] = [f"Tier must be one of {', '.join(Tier.values)}."]
    if "timezone" in clean:
        try:
            zoneinfo.ZoneInfo(clean["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            errors["timezone"] = [f"{clean['timezone']!r} is not a known time zone."]
    if "currency" in clean:
        clean["currency"] = str(clean["currency"]).upper()
        if len(clean["currency"]) != 3 or not clean["currency"].isalpha():
            errors["currency"] = ["Currency must be a three-letter ISO 4217 code."]
    if "country" in clean:
        clean["country"] = str(clean["country"]).upper()
        if len(clean["country"]) != 2 or not clean["country"].isalpha():
            errors["country"] = ["Country must be a two-letter ISO 3166 code."]
    if errors:
        raise ServiceValidationError(errors)
    return clean


def organization_create(
    *,
    name: str,
    slug: str | None = None,
    tier: str = Tier.CORE_PLUS,
    timezone: str = "Australia/Sydney",
    currency: str = "AUD",
    country: str = "AU",
    partner: Partner | None = None,
    owner: User | None = None,
    actor: User | None = None,
    ip: str | None = None,
) -> Organization:
    fields = _validate_common(
        {"name": name, "tier": tier, "timezone": timezone, "currency": currency, "country": country}
    )
    slug = slugify(slug or fields["name"])[:60]
    if not slug:
        raise field_error("slug", "Slug must contain letters or digits.")
    with transaction.atomic():
        if Organization.objects.filter(slug=slug).exists():
            raise ConflictError(f"An organization with slug {slug!r} already exists.", field="slug")
        org = Organization.objects.create(slug=slug, partner=partner, **fields)
        audit_record(action="organization.created", organization=org, actor=actor, target=org, ip=ip)
        publish(org, "organization.created", {"id": org.id, "slug": org.slug, "name": org.name, "tier": org.tier})
        if owner is not None:
            member_announce(Membership.objects.create(user=owner, organization=org, role=Role.OWNER))
    return org


def organization_update(
    *, organization: Organization, actor: User | None = None, ip: str | None = None, **fields: Any
) -> Organization:
    unknown = set(fields) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ServiceValidationError({name: ["This field cannot be changed here."] for name in sorted(unknown)})
    fields = _validate_common(fields)
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        changes = {
            key: [str(getattr(org, key)), str(value)] for key, value in fields.items() if getattr(org, key) != value
        }
        for key, value in fields.items():
            setattr(org, key, value)
        if changes:
            org.save(update_fields=[*fields.keys(), "updated_at"])
            audit_record(
                action="organization.updated", organization=org, actor=actor, target=org, changes=changes, ip=ip
            )
            publish(org, "organization.updated", {"id": org.id, "changes": changes})
    return org


def invoice_emails_clean(emails: list[str] | str) -> list[str]:
    """The addresses invoices go to, from a list or from text (one per line, or separated by commas or semicolons):
    trimmed, each a valid address, none twice (whatever its capitals), at most ``INVOICE_EMAILS_MAX``. Raises
    ``ServiceValidationError`` on ``invoice_emails`` naming the address at fault."""
    if isinstance(emails, str):
        emails = emails.replace(";", ",").replace("\n", ",").split(",")
    clean: list[str] = []
    seen: set[str] = set()
    for raw in emails:
        email = str(raw).strip()
        if not email:
            continue
        try:
            validate_email(email)
        except ValidationError:
            raise field_error("invoice_emails", f"{email[:100]!r} is not an email address.") from None
        if email.lower() in seen:
            raise field_error("invoice_emails", f"{email} is listed twice.")
        seen.add(email.lower())
        clean.append(email)
    if len(clean) > INVOICE_EMAILS_MAX:
        raise field_error("invoice_emails", f"At most {INVOICE_EMAILS_MAX} addresses; {len(clean)} were given.")
    return clean


def invoice_emails_update(
    *, organization: Organization, emails: list[str] | str, actor: User | None = None, ip: str | None = None
) -> Organization:
    """Set where the organization's invoices, payment reminders and contract notices are emailed (empty: to its
    owners and admins, ``billing.selectors.billing_contacts``). Audited, and published as ``organization.updated``
    (QuickBooks then updates the customer's email)."""
    addresses = invoice_emails_clean(emails)
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        if org.invoice_emails == addresses:
            return org
        changes = {"invoice_emails": [", ".join(org.invoice_emails), ", ".join(addresses)]}
        org.invoice_emails = addresses
        org.save(update_fields=["invoice_emails", "updated_at"])
        audit_record(action="organization.updated", organization=org, actor=actor, target=org, changes=changes, ip=ip)
        publish(org, "organization.updated", {"id": org.id, "changes": changes})
        where = ", ".join(addresses) if addresses else "the owners and admins"
        organization_alert(
            org, "security.invoice_emails_changed", title="Invoice addresses changed",
            message=f"{who(actor)} changed where {org.display_name}'s invoices, reminders and contract notices are "
            f"emailed: now to {where}. If you did not expect it, change it back on the Billing page.",
            url="/billing/recipients/",
        )  # fmt: skip
    organization.invoice_emails = addresses
    return org


def _set_status(
    organization: Organization, status: str, reason: str, action: str, actor: User | None, ip: str | None
) -> Organization:
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        if org.status == status:
            return org
        changes = {"status": [org.status, status]}
        org.status = status
        org.suspended_reason = reason
        org.save(update_fields=["status", "suspended_reason", "updated_at"])
        audit_record(action=action, organization=org, actor=actor, target=org, changes=changes, ip=ip)
        publish(org, action, {"id": org.id, "status": status, "reason": reason})
    return org


def organization_suspend(
    *, organization: Organization, reason: str = "", actor: User | None = None, ip: str | None = None
) -> Organization:
    """Suspended organizations cannot use the portal or the API until reactivated."""
    return _set_status(organization, OrgStatus.SUSPENDED, reason.strip()[:300], "organization.suspended", actor, ip)


def organization_reactivate(
    *, organization: Organization, actor: User | None = None, ip: str | None = None
) -> Organization:
    return _set_status(organization, OrgStatus.ACTIVE, "", "organization.reactivated", actor, ip)


def organization_export(
    *, organization: Organization, actor: User | None = None, ip: str | None = None
) -> dict[str, Any]:
    """Everything the organization owns as JSON-ready data (GDPR access requests). Apps add sections."""
    data = export.collect(organization)
    audit_record(action="organization.exported", organization=organization, actor=actor, target=organization, ip=ip)
    return data


def _logo_type(content: bytes) -> str | None:
    for magic, content_type in LOGO_TYPES.items():
        if content.startswith(magic):
            return content_type
    return None


def branding_update(
    *,
    organization: Organization,
    actor: User | None = None,
    ip: str | None = None,
    display_name: str | None = None,
    primary_color: str | None = None,
    accent_color: str | None = None,
    support_email: str | None = None,
    logo: bytes | None = None,
    remove_logo: bool = False,
) -> Organization:
    """Change white-label branding. Only the arguments given change. Logos: PNG or JPEG up to 256 KB."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    errors: dict[str, list[str]] = {}
    updates: dict[str, Any] = {}
    if display_name is not None:
        if len(display_name.strip()) > 200:
            errors["display_name"] = ["At most 200 characters."]
        updates["brand_display_name"] = display_name.strip()
    for field, value in (("primary_color", primary_color), ("accent_color", accent_color)):
        if value is not None:
            try:
                HEX_COLOUR(value)
            except ValidationError:
                errors[field] = ["Enter a colour as #RRGGBB."]
            updates[f"brand_{field}"] = value.lower()
    if support_email is not None:
        if support_email:
            try:
                validate_email(support_email)
            except ValidationError:
                errors["support_email"] = ["Enter a valid email address."]
        updates["brand_support_email"] = support_email
    if logo is not None:
        content_type = _logo_type(logo)
        if len(logo) > LOGO_MAX_BYTES:
            errors["logo"] = [f"The logo must be at most {LOGO_MAX_BYTES // 1024} KB."]
        elif content_type is None:
            errors["logo"] = ["The logo must be a PNG or JPEG image."]
        else:
            updates.update(
                brand_logo=logo,
                brand_logo_type=content_type,
                brand_logo_version=hashlib.sha256(logo).hexdigest()[:12],
            )
    elif remove_logo:
        updates.update(brand_logo=b"", brand_logo_type="", brand_logo_version="")
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        org = Organization.objects.select_for_update().get(pk=organization.pk)
        changes = {
            key.removeprefix("brand_"): [str(getattr(org, key)), str(value)]
            for key, value in updates.items()
            if key != "brand_logo" and getattr(org, key) != value
        }
        for key, value in updates.items():
            setattr(org, key, value)
        if updates:
            org.save(update_fields=[*updates.keys(), "updated_at"])
        if changes:
            audit_record(
                action="organization.branding_updated",
                organization=org,
                actor=actor,
                target=org,
                changes=changes,
                ip=ip,
            )
    return org
