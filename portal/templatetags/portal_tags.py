"""Small presentation helpers for portal templates: ``{% load portal_tags %}``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

from sms.error_codes import describe
from tenancy.flags import flag_enabled
from tenancy.models import Role

register = template.Library()

AUDIT_LABELS = {
    "auth.signed_in": "Signed in",
    "auth.signed_out": "Signed out",
    "auth.sign_in_failed": "Failed sign-in",
    "auth.mfa_failed": "Wrong two-factor code",
    "auth.password_changed": "Password changed",
    "auth.password_reset": "Password reset",
    "mfa.enrolled": "Two-factor sign-in set up",
    "mfa.disabled": "Two-factor sign-in turned off",
    "mfa.backup_codes_regenerated": "Backup codes regenerated",
    "member.invited": "Member invited",
    "member.joined": "Member joined",
    "member.invitation_revoked": "Invitation revoked",
    "member.role_changed": "Role changed",
    "member.removed": "Member removed",
    "api_key.created": "API key created",
    "api_key.revoked": "API key revoked",
    "organization.created": "Organization created",
    "organization.updated": "Organization settings changed",
    "organization.branding_updated": "Branding changed",
    "organization.suspended": "Organization suspended",
    "organization.reactivated": "Organization reactivated",
    "organization.exported": "Data exported",
    "report_schedule.created": "Report scheduled",
    "report_schedule.updated": "Scheduled report changed",
    "report_schedule.deleted": "Scheduled report deleted",
}


@register.filter
def audit_label(action: str) -> str:
    return AUDIT_LABELS.get(action, action)


@register.filter
def sms_error(code: str | None) -> str:
    """The SMS provider's error code with its meaning: ``{{ job.error_code|sms_error }}``."""
    return describe(code)


@register.filter
def role_label(role: str | None) -> str:
    if not role:
        return ""
    try:
        return str(Role(role).label)
    except ValueError:
        return role


def duration_words(value: timedelta) -> str:
    """A length of time in words, sign ignored: ``less than a minute``, ``15 minutes``, ``1 hour 30 minutes``."""
    minutes = round(abs(value.total_seconds()) / 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


@register.filter
def duration(value: Any) -> str:
    """A timedelta in words (see ``duration_words``); anything else as text."""
    if not isinstance(value, timedelta):
        return str(value or "")
    return duration_words(value)


@register.filter
def changes_summary(changes: Any) -> str:
    """An audit event's ``changes`` as one line: ``role: MEMBER → ADMIN; user: bob@acme.test``."""
    if not isinstance(changes, dict) or not changes:
        return ""
    parts = []
    for key, value in changes.items():
        if isinstance(value, list) and len(value) == 2:
            parts.append(f"{key}: {value[0]} → {value[1]}")
        elif isinstance(value, list):
            parts.append(f"{key}: {', '.join(str(item) for item in value)}")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


@register.simple_tag(takes_context=True)
def flag(context: template.Context, key: str) -> bool:
    """``{% flag "new-dashboard" as on %}``: whether the current organization has the feature ``key``
    (``tenancy.flags.flag_enabled``); False outside an organization."""
    request = context.get("request")
    return flag_enabled(key, getattr(request, "organization", None))
