"""The dashboard: a summary of the current organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.views.decorators.http import require_safe

from integrations.ninjaone.selectors import device_count
from portal.access import MemberRequest
from portal.dashboard_selectors import dashboard_figures
from portal.templatetags.portal_tags import audit_label
from tenancy.services.mfa import has_mfa

RECENT_EVENTS = 8


def activity_time(local: datetime) -> str:
    """``local`` as ``|date:"j M Y, H:i"`` writes it (22 Nov 2026, 04:13), made directly: the generic formatter
    parses the format for every value and costs five times as much."""
    return f"{local.day} {MONTHS_3[local.month].title()} {local.year:04d}, {local.hour:02d}:{local.minute:02d}"


def _activity_rows(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The recent activity table's cells, in the current time zone: the page's busiest loop, so it is formatted
    here once per row rather than through template filters (the same text as ``|date:'c'``, ``|date:"j M Y, H:i"``,
    ``|audit_label`` and ``|default:"system"``)."""
    rows = []
    for event in events:
        local = timezone.localtime(event["created_at"])
        rows.append(
            {
                "datetime": local.isoformat(),
                "when": activity_time(local),
                "what": audit_label(event["action"]),
                "who": event["actor_label"] or "system",
                "details": event["target_label"],
            }
        )
    return rows


@require_safe
def dashboard(request: MemberRequest) -> HttpResponse:
    org = request.organization
    # The counts, and the overdue invoices and latest audit events for those who may manage the organization, in
    # one query.
    figures = dashboard_figures(org, now=timezone.now(), recent_events=RECENT_EVENTS if request.can_manage else None)
    # Known from the middleware's second-factor check; asked again only if that did not run.
    known_mfa = request.user_has_mfa
    context = {
        "member_count": figures.member_count,
        "open_invitation_count": figures.open_invitation_count,
        "active_key_count": figures.active_key_count,
        "open_ticket_count": figures.open_ticket_count,
        "waiting_ticket_count": figures.waiting_ticket_count,
        "overdue_invoice_count": figures.overdue_invoice_count,
        "has_mfa": known_mfa if known_mfa is not None else has_mfa(request.user),
        "device_count": device_count(org),  # None (and no query) when not linked to NinjaOne
        "recent_events": None if figures.recent_events is None else _activity_rows(figures.recent_events),
    }
    return render(request, "portal/dashboard.html", context)
