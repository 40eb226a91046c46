"""Writing the audit log. Services call :func:`audit_record` inside their transaction."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import models
from django.http import HttpRequest

from tenancy.models import AuditEvent, Organization, User


def client_ip(request: HttpRequest | None) -> str | None:
    """The caller's address as Django sees it (behind a proxy, SECURE_PROXY_SSL_HEADER and the proxy set it)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    organization: Organization | None = None,
    actor: User | None = None,
    actor_label: str = "",
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEvent.objects.create(
        action=action,
        organization=organization,
        actor=actor,
        actor_label=actor_label or (actor.email if actor else ""),
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        changes=changes or {},
        ip_address=ip,
    )


def audit_record_for_user(
    *,
    action: str,
    user: User | None,
    ip: str | None = None,
    changes: dict[str, Any] | None = None,
    actor_label: str = "",
) -> None:
    """Record an action about a person (sign-in, MFA) in the log of every organization they belong to, so each
    organization's owners see it; a person in no organization gets one row without an organization."""
    from tenancy.models import Membership

    org_ids: list[uuid.UUID | None] = (
        list(Membership.objects.filter(user=user).values_list("organization_id", flat=True)) if user else []
    )
    rows = [
        AuditEvent(
            action=action,
            organization_id=org_id,
            actor=user,
            actor_label=actor_label or (user.email if user else ""),
            target_type=user._meta.label if user else "",
            target_id=str(user.pk) if user else "",
            target_label=str(user) if user else "",
            changes=changes or {},
            ip_address=ip,
        )
        for org_id in org_ids or [None]
    ]
    AuditEvent.objects.bulk_create(rows)
