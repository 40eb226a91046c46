"""The SLA breach check (``check_sla_breaches``, every 15 minutes from beat).

It reads only tickets whose ``sla_next_check_at`` has come (a partial index), claims each with
``SELECT … FOR UPDATE SKIP LOCKED``, re-reads its clocks and acts on what changed:
- a clock at risk: the assignee is told;
- a clock breached: escalation level 1, the managers are told;
- still breached half a target later: level 2, the admins are told and the priority goes up one step.
Each notice is a unique ``SlaNotice`` row, so two runs at once, or a rerun, tell nobody twice. A dry run does the
same work in a transaction it rolls back, so it reports exactly what a real run would do and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from events.services import publish
from tickets import routing, sla
from tickets.clocks import SLA_FIELDS, clocks_refresh, targets_apply
from tickets.models import OPEN_STATUSES, ClockState, Ticket, TicketActivity

BATCH = 500
CLOCKS = (("first_response", "first response"), ("resolution", "resolution"))


@dataclass
class CheckReport:
    checked: int = 0
    actions: list[str] = field(default_factory=list)


def _log(ticket: Ticket, kind: str, message: str) -> None:
    TicketActivity.objects.create(organization_id=ticket.organization_id, ticket=ticket, kind=kind, message=message)


def _target(ticket: Ticket, clock: str) -> timedelta | None:
    return ticket.first_response_target if clock == "first_response" else ticket.resolution_target


def _at_risk(ticket: Ticket, clock: str, label: str, payload: dict[str, object], report: CheckReport) -> None:
    if not routing.notice_once(ticket, f"{clock}_at_risk"):
        return
    to = [ticket.assignee.email] if ticket.assignee else routing.staff_in("Manager")
    due = getattr(ticket, f"{clock}_due")
    routing.alert(ticket, to=to, headline=f"{label.capitalize()} at risk", detail=f"Due {due:%Y-%m-%d %H:%M %Z}.")
    publish(ticket.organization, "ticket.sla_at_risk", payload)
    report.actions.append(f"{ticket.reference}: {label} at risk, told {', '.join(to) or 'nobody'}")


def _level_1(ticket: Ticket, label: str, payload: dict[str, object], report: CheckReport) -> None:
    if not routing.notice_once(ticket, "breach_level_1"):
        return
    ticket.escalation_level = 1
    detail = "Escalated to level 1: managers."
    routing.alert(ticket, to=routing.staff_in("Manager"), headline=f"{label.capitalize()} breached", detail=detail)
    publish(ticket.organization, "ticket.sla_breached", {**payload, "level": 1})
    _log(ticket, "escalation", f"{label.capitalize()} breached: escalated to managers (level 1)")
    report.actions.append(f"{ticket.reference}: {label} breached, level 1")


def _level_2(ticket: Ticket, label: str, payload: dict[str, object], report: CheckReport) -> None:
    if not routing.notice_once(ticket, "breach_level_2"):
        return
    ticket.escalation_level = 2
    before = ticket.priority
    ticket.priority = sla.raise_priority(before).value
    targets_apply(ticket)
    detail = f"Escalated to level 2: admins; priority raised {before} to {ticket.priority}."
    routing.alert(ticket, to=routing.staff_in("Admin"), headline=f"{label.capitalize()} still breached", detail=detail)
    publish(ticket.organization, "ticket.sla_breached", {**payload, "level": 2, "priority": ticket.priority})
    _log(ticket, "escalation", f"Still breached: {detail}")
    report.actions.append(f"{ticket.reference}: {label} still breached, level 2, priority {ticket.priority}")


def _escalate(ticket: Ticket, now: datetime, report: CheckReport) -> None:
    for clock, label in CLOCKS:
        state = getattr(ticket, f"{clock}_state")
        payload: dict[str, object] = {"id": ticket.id, "number": ticket.reference, "clock": clock}
        if state == ClockState.AT_RISK:
            _at_risk(ticket, clock, label, payload, report)
        if state != ClockState.BREACHED:
            continue
        if ticket.escalation_level < 1:
            _level_1(ticket, label, payload, report)
        due, target = getattr(ticket, f"{clock}_due"), _target(ticket, clock)
        half_target_later = due is not None and target is not None and now >= due + target / 2
        if ticket.escalation_level == 1 and half_target_later:
            _level_2(ticket, label, payload, report)


SAVED_FIELDS = [
    *SLA_FIELDS,
    "escalation_level",
    "priority",
    "sla_policy",
    "sla_calendar",
    "sla_always_on",
    "first_response_target",
    "resolution_target",
    "at_risk_ratio",
    "updated_at",
]


def _check_batch(pks: list[uuid.UUID], now: datetime, report: CheckReport) -> None:
    """Claim the batch's tickets (skipping any another run holds), act on each, write them back in one UPDATE."""
    tickets = list(
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("organization", "assignee", "sla_calendar")
        .filter(pk__in=pks, sla_next_check_at__lte=now, status__in=OPEN_STATUSES)
    )
    for ticket in tickets:
        clocks_refresh(ticket, now)
        _escalate(ticket, now, report)
        clocks_refresh(ticket, now)  # the level or the priority may have moved the next check
        ticket.updated_at = now
    if tickets:
        Ticket.objects.bulk_update(tickets, SAVED_FIELDS)
    report.checked += len(tickets)


def sla_check(*, now: datetime | None = None, dry_run: bool = False) -> CheckReport:
    """Act on every ticket whose clocks have changed state by ``now``."""
    now = now or timezone.now()
    report = CheckReport()
    due = list(
        Ticket.objects.filter(sla_next_check_at__lte=now, status__in=OPEN_STATUSES)
        .order_by("sla_next_check_at")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(due), BATCH):
        with transaction.atomic():
            _check_batch(due[start : start + BATCH], now, report)
            if dry_run:
                transaction.set_rollback(True)
    return report
