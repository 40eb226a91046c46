"""Routing: which technician a ticket goes to, and telling staff about tickets that need them.

A ticket goes to an active technician who has every skill it requires and is on shift now, with the lowest
weighted open load (P1 counts 4, P2 2, P3 1, P4 0.5); ties go to whoever was assigned least recently (never counts as
longest ago). With no one eligible the ticket waits unassigned and the managers are told, once per ticket.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from django.contrib.auth.models import Group
from django.db.models import Count

from notifications.services import is_email_address, notify
from tenancy.models import Organization
from tickets import sla
from tickets.models import OPEN_STATUSES, SupportSettings, Technician, Ticket

NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Candidate:
    technician: Technician
    load: Decimal

    @property
    def sort_key(self) -> tuple[Decimal, datetime, str]:
        return (self.load, self.technician.last_assigned_at or NEVER, self.technician.user.email)


def auto_routing_on(ticket: Ticket) -> bool:
    row = SupportSettings.objects.filter(organization_id=ticket.organization_id).first()
    return row is None or row.auto_routing


def on_shift(technician: Technician, at: datetime) -> bool:
    return technician.shift is None or sla.is_business_time(technician.shift.as_calendar(), at)


def loads(technicians: list[Technician]) -> dict[uuid.UUID, Decimal]:
    """Each technician's open tickets weighted by priority (one query)."""
    counts = (
        Ticket.objects.filter(assignee_id__in=[tech.user_id for tech in technicians], status__in=OPEN_STATUSES)
        .values("assignee_id", "priority")
        .annotate(open=Count("id"))
    )
    totals: dict[uuid.UUID, Decimal] = {}
    for row in counts:
        weight = sla.PRIORITY_WEIGHTS[row["priority"]] * row["open"]
        totals[row["assignee_id"]] = totals.get(row["assignee_id"], Decimal(0)) + weight
    return totals


def candidates(ticket: Ticket, at: datetime) -> list[Candidate]:
    """Eligible technicians, best first."""
    needed = set(ticket.required_skills)
    pool = [
        tech
        for tech in Technician.objects.filter(active=True, user__is_active=True, user__is_staff=True).select_related(
            "user", "shift"
        )
        if needed <= set(tech.skills) and on_shift(tech, at)
    ]
    weights = loads(pool)
    found = [Candidate(tech, weights.get(tech.user_id, Decimal(0))) for tech in pool]
    return sorted(found, key=lambda candidate: candidate.sort_key)


def choose(ticket: Ticket, at: datetime) -> tuple[Technician | None, str]:
    """The technician for ``ticket`` and the reason, recorded on the ticket."""
    ranked = candidates(ticket, at)
    skills = ", ".join(ticket.required_skills) or "none"
    if not ranked:
        return None, f"No active technician on shift with the skills needed ({skills}); waiting in the queue."
    best = ranked[0]
    tied = [other for other in ranked[1:] if other.load == best.load]
    reason = f"Routed to {best.technician.user.email}: has the skills ({skills}), on shift, open load {best.load}"
    if tied:
        reason += f"; tied with {len(tied)} other(s), assigned least recently"
    return best.technician, reason[:300]


def staff_in(group_name: str) -> list[str]:
    group = Group.objects.filter(name=group_name).first()
    if group is None:
        return []
    return sorted(group.user_set.filter(is_active=True, is_staff=True).values_list("email", flat=True))


def notice_once(ticket: Ticket, kind: str, now: datetime) -> bool:
    """Record on the locked (or new) ``ticket`` that ``kind`` was announced; False when it already was."""
    if kind in ticket.notices_sent:
        return False
    ticket.notices_sent = {**ticket.notices_sent, kind: now.isoformat()}
    ticket.save(update_fields=["notices_sent"])
    return True


class Announced(Protocol):
    """What an alert says about a ticket: a Ticket, or the breach check's facts about one."""

    @property
    def pk(self) -> Any: ...
    @property
    def reference(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def organization(self) -> Organization: ...
    def get_priority_display(self) -> str: ...


def alert(ticket: Announced, *, to: list[str], headline: str, detail: str, key: str = "") -> None:
    """Email staff (``to``: their addresses) about a ticket. Staff are not members of the customer's organization, so
    this is a platform notice, one email each; with ``key``, once."""
    addresses = [address for address in to if is_email_address(address)]
    if not addresses:
        return
    notify(
        organization=None,
        event_type="ticket.staff_alert",
        addresses=addresses,
        template="ticket_alert",
        key=key,
        context={
            "headline": headline,
            "detail": detail,
            "reference": ticket.reference,
            "subject": ticket.subject,
            "organization_name": ticket.organization.name,
            "priority": ticket.get_priority_display(),
            "path": f"/admin/tickets/ticket/{ticket.pk}/change/",
        },
    )


def managers_told_unrouted(ticket: Ticket, reason: str, now: datetime) -> None:
    if notice_once(ticket, "unrouted", now):
        alert(ticket, to=staff_in("Manager"), headline=f"{ticket.reference} has no technician", detail=reason,
              key=f"ticket:{ticket.pk}:unrouted")  # fmt: skip
