"""The tenancy sections of the organization export."""

from __future__ import annotations

from typing import Any

from tenancy.export import register
from tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Organization


@register("organization")
def export_organization(org: Organization) -> dict[str, Any]:
    return {
        "id": str(org.id),
        "name": org.name,
        "slug": org.slug,
        "tier": org.tier,
        "timezone": org.timezone,
        "currency": org.currency,
        "country": org.country,
        "status": org.status,
        "created_at": org.created_at.isoformat(),
        "branding": {
            "display_name": org.brand_display_name,
            "primary_color": org.brand_primary_color,
            "accent_color": org.brand_accent_color,
            "support_email": org.brand_support_email,
            "has_logo": bool(org.brand_logo_version),
        },
    }


@register("members")
def export_members(org: Organization) -> list[dict[str, Any]]:
    return [
        {"email": m.user.email, "name": m.user.full_name, "role": m.role, "since": m.created_at.isoformat()}
        for m in Membership.objects.for_org(org).select_related("user")
    ]


@register("invitations")
def export_invitations(org: Organization) -> list[dict[str, Any]]:
    return [
        {
            "email": i.email,
            "role": i.role,
            "created_at": i.created_at.isoformat(),
            "accepted": i.accepted_at is not None,
        }
        for i in Invitation.objects.for_org(org)
    ]


@register("api_keys")
def export_api_keys(org: Organization) -> list[dict[str, Any]]:
    return [
        {
            "name": k.name,
            "prefix": k.prefix,
            "scopes": k.scopes,
            "created_at": k.created_at.isoformat(),
            "revoked": k.revoked_at is not None,
        }
        for k in ApiKey.objects.for_org(org)
    ]


@register("audit_log")
def export_audit(org: Organization) -> list[dict[str, Any]]:
    return [
        {
            "at": e.created_at.isoformat(),
            "action": e.action,
            "actor": e.actor_label,
            "target": e.target_label,
            "changes": e.changes,
            "ip": e.ip_address,
        }
        for e in AuditEvent.objects.for_org(org).order_by("created_at")
    ]
