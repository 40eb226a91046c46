"""The dashboard: a summary of the current organization."""

from __future__ import annotations

from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from integrations.ninjaone.selectors import device_count
from portal.access import MemberRequest
from tenancy.models import ApiKey, AuditEvent, Invitation, Membership
from tenancy.services.mfa import has_mfa

RECENT_EVENTS = 8


@require_safe
def dashboard(request: MemberRequest) -> HttpResponse:
    org = request.organization
    now = timezone.now()
    # Known from the middleware's second-factor check; asked again only if that did not run.
    known_mfa = request.user_has_mfa
    context = {
        "member_count": Membership.objects.for_org(org).count(),
        "open_invitation_count": Invitation.objects.for_org(org)
        .filter(accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)
        .count(),
        "active_key_count": ApiKey.objects.for_org(org)
        .filter(revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .count(),
        "has_mfa": known_mfa if known_mfa is not None else has_mfa(request.user),
        "device_count": device_count(org),  # None (and no query) when not linked to NinjaOne
        "recent_events": (
            list(AuditEvent.objects.for_org(org).order_by("-created_at")[:RECENT_EVENTS])
            if request.can_manage
            else None
        ),
    }
    return render(request, "portal/dashboard.html", context)
