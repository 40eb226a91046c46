"""The SLA breach check (``check_sla_breaches``, every 15 minutes from beat).

It reads only tickets whose next check has come (the ``SlaCheck`` queue), claims each with
``SELECT … FOR UPDATE SKIP LOCKED``, re-reads its clocks and acts on what changed:
- a clock at risk: the assignee is told;
- a clock breached: escalation level 1, the managers are told;
- still breached half a target later: level 2, the admins are told and the priority goes up one step.
Each notice given is recorded in the ticket's ``notices_sent``, written with the ticket while this run holds its row
lock, so two runs at once, or a rerun, tell nobody twice. A dry run does the same work in a transaction it rolls
back, so it reports exactly what a real run would do and changes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from events.services import publish_many
from tenancy.models import Organization
from tenancy.recordset import update_many
from tickets import routing, sla
from tickets.clocks import SLA_FIELDS, clocks_refresh, targets_apply
from tickets.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    ClockState,
    SlaCheck,
    Ticket,
    TicketActivity,
    WorkflowTrigger,
)
from tickets.workflows import run_workflows_many

BATCH = 500
CLOCKS = (("first_response", "first response"), ("resolution", "resolution"))


@dataclass
class CheckReport:
    checked: int = 0
    actions: list[str] = field(default_factory=list)


@dataclass
class Batch:
    """What one batch will write, gathered so that each kind of row is written in one statement."""

    now: datetime
    report: CheckReport
    staff: dict[str, list[str]] = field(default_factory=dict)
    events: list[tuple[Organization, str, dict[str, object]]] = field(default_factory=list)
    activity: list[TicketActivity] = field(default_factory=list)
    triggered: list[tuple[Ticket, str]] = field(default_factory=list)  # for the workflows, after the batch's writes

    def staff_in(self, group: str) -> list[str]:
        if group not in self.staff:
            self.staff[group] = routing.staff_in(group)
        return self.staff[group]

    def log(self, ticket: Ticket, message: str) -> None:
        self.activity.append(TicketActivity(organization_id=ticket.organization_id, ticket=ticket,
                                            kind="escalation", message=message[:500], created_at=self.now))  # fmt: skip


def _target(ticket: Ticket, clock: str) -> timedelta | None:
    return ticket.first_response_target if clock == "first_response" else ticket.resolution_target


def _wanted(ticket: Ticket, now: datetime) -> list[tuple[str, str, str]]:
    """The notices the ticket's clocks call for now: (kind, clock, label). Unique rows decide which are new."""
    wanted = []
    for clock, label in CLOCKS:
        state = getattr(ticket, f"{clock}_state")
        if state == ClockState.AT_RISK:
            wanted.append((f"{clock}_at_risk", clock, label))
        if state != ClockState.BREACHED:
            continue
        wanted.append(("breach_level_1", clock, label))
        due, target = getattr(ticket, f"{clock}_due"), _target(ticket, clock)
        if due is not None and target is not None and now >= due + target / 2:
            wanted.append(("breach_level_2", clock, label))
    return wanted


def _act(ticket: Ticket, kind: str, clock: str, label: str, batch: Batch) -> bool:
    """The effects of a notice this run recorded. True when the ticket's level or priority moved."""
    payload: dict[str, object] = {"id": str(ticket.id), "number": ticket.reference, "clock": clock}
    headline = label.capitalize()
    if kind.endswith("_at_risk"):
        to = [ticket.assignee.email] if ticket.assignee else batch.staff_in("Manager")
        due = getattr(ticket, f"{clock}_due")
        routing.alert(ticket, to=to, headline=f"{headline} at risk", detail=f"Due {due:%Y-%m-%d %H:%M %Z}.")
        batch.events.append((ticket.organization, "ticket.sla_at_risk", payload))
        batch.triggered.append((ticket, WorkflowTrigger.SLA_AT_RISK))
        batch.report.actions.append(f"{ticket.reference}: {label} at risk, told {', '.join(to) or 'nobody'}")
        return False
    if kind == "breach_level_1":
        ticket.escalation_level = max(ticket.escalation_level, 1)
        detail = "Escalated to level 1: managers."
        routing.alert(ticket, to=batch.staff_in("Manager"), headline=f"{headline} breached", detail=detail)
        batch.events.append((ticket.organization, "ticket.sla_breached", {**payload, "level": 1}))
        batch.triggered.append((ticket, WorkflowTrigger.SLA_BREACHED))
        batch.log(ticket, f"{headline} breached: escalated to managers (level 1)")
        batch.report.actions.append(f"{ticket.reference}: {label} breached, level 1")
        return True
    if kind == "breach_level_2":
        ticket.escalation_level = 2
        before = ticket.priority
        ticket.priority = sla.raise_priority(before).value
        targets_apply(ticket)
        detail = f"Escalated to level 2: admins; priority raised {before} to {ticket.priority}."
        routing.alert(ticket, to=batch.staff_in("Admin"), headline=f"{headline} still breached", detail=detail)
        batch.events.append((ticket.organization, "ticket.sla_breached", {**payload, "level": 2,
                                                                         "priority": ticket.priority}))  # fmt: skip
        batch.log(ticket, f"Still breached: {detail}")
        batch.report.actions.append(f"{ticket.reference}: {label} still breached, level 2, priority {ticket.priority}")
        return True
    raise ValueError(f"unknown notice kind {kind!r}")


# What every checked ticket gets back; a ticket whose priority went up (level 2) also gets its new targets.
CLOCK_FIELDS = [*SLA_FIELDS, "escalation_level", "notices_sent", "updated_at"]
RETARGET_FIELDS = [
    *CLOCK_FIELDS,
    "priority",
    "sla_policy",
    "sla_calendar",
    "sla_always_on",
    "first_response_target",
    "resolution_target",
    "at_risk_ratio",
]


def _attach_shared(tickets: list[Ticket]) -> None:
    """Give the tickets their organizations and calendars from one query each: a batch has hundreds of tickets but
    few organizations and calendars, and joining them would build one copy per ticket."""
    organizations = Organization.objects.in_bulk({ticket.organization_id for ticket in tickets})
    calendar_ids = {ticket.sla_calendar_id for ticket in tickets if ticket.sla_calendar_id is not None}
    calendars = BusinessCalendar.objects.in_bulk(calendar_ids) if calendar_ids else {}
    for ticket in tickets:
        ticket.organization = organizations[ticket.organization_id]
        ticket.sla_calendar = calendars.get(ticket.sla_calendar_id) if ticket.sla_calendar_id else None


def _claim(now: datetime, after: tuple[datetime, uuid.UUID] | None) -> list[Ticket]:
    """The next batch of due tickets, soonest first, after ``after`` (the last one of the previous batch), locked for
    this run; tickets another run holds are skipped. Paging by position rather than by "still due" keeps a dry run,
    which leaves every ticket due, from reading the same batch again."""
    due = (
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("assignee")
        .filter(sla_check__due_at__lte=now, status__in=OPEN_STATUSES)
        .order_by("sla_check__due_at", "id")
    )
    if after is not None:
        due = due.filter(Q(sla_check__due_at__gt=after[0]) | Q(sla_check__due_at=after[0], id__gt=after[1]))
    return list(due.annotate(queued_at=F("sla_check__due_at"))[:BATCH])


def _check_batch(tickets: list[Ticket], now: datetime, report: CheckReport, *, dry_run: bool = False) -> None:
    """Re-read the claimed tickets' clocks, record the notices they call for in one INSERT, act on the new ones, and
    write tickets, events and activity back in one statement each."""
    _attach_shared(tickets)
    batch = Batch(now=now, report=report)
    priorities = {ticket.pk: ticket.priority for ticket in tickets}
    sent = now.isoformat()
    for ticket in tickets:
        clocks_refresh(ticket, now)
        moved = False
        for kind, clock, label in _wanted(ticket, now):
            if kind not in ticket.notices_sent:  # once per ticket and kind, even if both clocks call for it
                ticket.notices_sent = {**ticket.notices_sent, kind: sent}
                moved = _act(ticket, kind, clock, label, batch) or moved
        if moved:
            clocks_refresh(ticket, now)  # the level or the priority moved the next check
        ticket.updated_at = now
    if tickets:
        retargeted = {ticket.pk for ticket in tickets if ticket.priority != priorities[ticket.pk]}
        update_many([ticket for ticket in tickets if ticket.pk not in retargeted], CLOCK_FIELDS)
        update_many([ticket for ticket in tickets if ticket.pk in retargeted], RETARGET_FIELDS)
        SlaCheck.file(tickets)
        TicketActivity.objects.bulk_create(batch.activity)
        publish_many(batch.events)
        if not dry_run:
            run_workflows_many(batch.triggered)
    report.checked += len(tickets)


def sla_check(*, now: datetime | None = None, dry_run: bool = False) -> CheckReport:
    """Act on every ticket whose clocks have changed state by ``now``, a batch per transaction."""
    now = now or timezone.now()
    report = CheckReport()
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        with transaction.atomic():
            tickets = _claim(now, after)
            if not tickets:
                break
            last = tickets[-1]
            after = (last.queued_at, last.pk)  # type: ignore[attr-defined]
            _check_batch(tickets, now, report, dry_run=dry_run)
            if dry_run:
                transaction.set_rollback(True)
        if len(tickets) < BATCH:
            break
    return report
