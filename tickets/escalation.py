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

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from events.services import publish_many
from tenancy.models import Organization
from tenancy.recordset import update_many
from tickets import escalation_sql, routing, sla
from tickets.clocks import SLA_FIELDS, clocks_refresh, targets_apply
from tickets.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    ClockState,
    Priority,
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


@dataclass(frozen=True)
class Facts:
    """What an announcement says about a ticket: from the ticket itself (Python path) or from the batch statement's
    row (``escalation_sql``), so both announce alike."""

    pk: uuid.UUID
    organization: Organization
    number: int
    subject: str
    priority: str
    assignee_email: str | None
    first_response_due: datetime | None
    resolution_due: datetime | None

    @classmethod
    def of(cls, ticket: Ticket) -> Facts:
        email = ticket.assignee.email if ticket.assignee else None
        return cls(ticket.pk, ticket.organization, ticket.number, ticket.subject, ticket.priority, email,
                   ticket.first_response_due, ticket.resolution_due)  # fmt: skip

    @property
    def reference(self) -> str:
        return f"T-{self.number}"

    def get_priority_display(self) -> str:
        return str(Priority(self.priority).label)


@dataclass
class Batch:
    """What one batch will write, gathered so that each kind of row is written in one statement."""

    now: datetime
    report: CheckReport
    staff: dict[str, list[str]] = field(default_factory=dict)
    events: list[tuple[Organization, str, dict[str, object]]] = field(default_factory=list)
    activity: list[TicketActivity] = field(default_factory=list)
    # (ticket, organization, trigger) for the workflows, run after the batch's writes
    triggered: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)

    def staff_in(self, group: str) -> list[str]:
        if group not in self.staff:
            self.staff[group] = routing.staff_in(group)
        return self.staff[group]

    def log(self, facts: Facts, message: str) -> None:
        self.activity.append(TicketActivity(organization_id=facts.organization.pk, ticket_id=facts.pk,
                                            kind="escalation", message=message[:500], created_at=self.now))  # fmt: skip

    def write(self, *, dry_run: bool) -> None:
        TicketActivity.objects.bulk_create(self.activity)
        publish_many(self.events)
        if not dry_run:
            run_workflows_many(self.triggered)


def _target(ticket: Ticket, clock: str) -> timedelta | None:
    return ticket.first_response_target if clock == "first_response" else ticket.resolution_target


def wanted(ticket: Ticket, now: datetime) -> list[tuple[str, str, str]]:
    """The notices the ticket's clocks call for now: (kind, clock, label); ``notices_sent`` decides which are new."""
    kinds = []
    for clock, label in CLOCKS:
        state = getattr(ticket, f"{clock}_state")
        if state == ClockState.AT_RISK:
            kinds.append((f"{clock}_at_risk", clock, label))
        if state != ClockState.BREACHED:
            continue
        kinds.append(("breach_level_1", clock, label))
        due, target = getattr(ticket, f"{clock}_due"), _target(ticket, clock)
        if due is not None and target is not None and now >= due + target / 2:
            kinds.append(("breach_level_2", clock, label))
    return kinds


def _announce(facts: Facts, kind: str, clock: str, label: str, batch: Batch, *, raised_from: str = "") -> None:
    """Tell the people a notice is for, publish its event, log it and report it (``raised_from``: the priority before
    a level-2 escalation raised it)."""
    payload: dict[str, object] = {"id": str(facts.pk), "number": facts.reference, "clock": clock}
    headline = label.capitalize()
    if kind.endswith("_at_risk"):
        to = [facts.assignee_email] if facts.assignee_email else batch.staff_in("Manager")
        due = getattr(facts, f"{clock}_due")
        routing.alert(facts, to=to, headline=f"{headline} at risk", detail=f"Due {due:%Y-%m-%d %H:%M %Z}.")
        batch.events.append((facts.organization, "ticket.sla_at_risk", payload))
        batch.triggered.append((facts.pk, facts.organization.pk, WorkflowTrigger.SLA_AT_RISK))
        batch.report.actions.append(f"{facts.reference}: {label} at risk, told {', '.join(to) or 'nobody'}")
    elif kind == "breach_level_1":
        detail = "Escalated to level 1: managers."
        routing.alert(facts, to=batch.staff_in("Manager"), headline=f"{headline} breached", detail=detail)
        batch.events.append((facts.organization, "ticket.sla_breached", {**payload, "level": 1}))
        batch.triggered.append((facts.pk, facts.organization.pk, WorkflowTrigger.SLA_BREACHED))
        batch.log(facts, f"{headline} breached: escalated to managers (level 1)")
        batch.report.actions.append(f"{facts.reference}: {label} breached, level 1")
    elif kind == "breach_level_2":
        detail = f"Escalated to level 2: admins; priority raised {raised_from} to {facts.priority}."
        routing.alert(facts, to=batch.staff_in("Admin"), headline=f"{headline} still breached", detail=detail)
        batch.events.append((facts.organization, "ticket.sla_breached", {**payload, "level": 2,
                                                                         "priority": facts.priority}))  # fmt: skip
        batch.log(facts, f"Still breached: {detail}")
        batch.report.actions.append(f"{facts.reference}: {label} still breached, level 2, priority {facts.priority}")
    else:
        raise ValueError(f"unknown notice kind {kind!r}")


def _act(ticket: Ticket, kind: str, clock: str, label: str, batch: Batch) -> bool:
    """Apply a new notice to the ticket and announce it. True when the ticket's level or priority moved."""
    before = ticket.priority
    if kind == "breach_level_1":
        ticket.escalation_level = max(ticket.escalation_level, 1)
    elif kind == "breach_level_2":
        ticket.escalation_level = 2
        ticket.priority = sla.raise_priority(before).value
        targets_apply(ticket)
    _announce(Facts.of(ticket), kind, clock, label, batch, raised_from=before)
    return kind.startswith("breach_level_")


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


def _claim(now: datetime, after: tuple[datetime, uuid.UUID]) -> list[Ticket]:
    """The next batch of due tickets, soonest first, after ``after`` (the last one of the previous batch), locked for
    this run; tickets another run holds are skipped. Paging by position rather than by "still due" keeps a dry run,
    which leaves every ticket due, from reading the same batch again."""
    due = (
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("assignee")
        .filter(sla_check__due_at__lte=now, status__in=OPEN_STATUSES)
        .filter(Q(sla_check__due_at__gt=after[0]) | Q(sla_check__due_at=after[0], id__gt=after[1]))
        .order_by("sla_check__due_at", "id")
    )
    return list(due.annotate(queued_at=F("sla_check__due_at"))[:BATCH])


def _check_batch(tickets: list[Ticket], now: datetime, batch: Batch) -> None:
    """Re-read the claimed tickets' clocks, act on the notices they call for that were not given yet, and write the
    tickets and the queue back in one statement each."""
    _attach_shared(tickets)
    priorities = {ticket.pk: ticket.priority for ticket in tickets}
    sent = now.isoformat()
    for ticket in tickets:
        clocks_refresh(ticket, now)
        moved = False
        for kind, clock, label in wanted(ticket, now):
            if kind not in ticket.notices_sent:  # once per ticket and kind, even if both clocks call for it
                ticket.notices_sent = {**ticket.notices_sent, kind: sent}
                moved = _act(ticket, kind, clock, label, batch) or moved
        if moved:
            clocks_refresh(ticket, now)  # the level or the priority moved the next check
        ticket.updated_at = now
    retargeted = {ticket.pk for ticket in tickets if ticket.priority != priorities[ticket.pk]}
    update_many([ticket for ticket in tickets if ticket.pk not in retargeted], CLOCK_FIELDS)
    update_many([ticket for ticket in tickets if ticket.pk in retargeted], RETARGET_FIELDS)
    SlaCheck.file(tickets)
    batch.report.checked += len(tickets)


def _python_batch(
    now: datetime, after: tuple[datetime, uuid.UUID], batch: Batch
) -> tuple[int, tuple[datetime, uuid.UUID]]:
    """One batch, every ticket read and written by Python. Returns how many were claimed, and the last one's key."""
    tickets = _claim(now, after)
    if tickets:
        _check_batch(tickets, now, batch)
        after = (tickets[-1].queued_at, tickets[-1].pk)  # type: ignore[attr-defined]
    return len(tickets), after


def _statement_batch(
    now: datetime, after: tuple[datetime, uuid.UUID], batch: Batch
) -> tuple[int, tuple[datetime, uuid.UUID]]:
    """One batch settled by ``escalation_sql`` (PostgreSQL), announced here; what it leaves goes the Python way."""
    rows = escalation_sql.advance(now, after, BATCH)
    if not rows:
        return 0, after
    organizations = Organization.objects.in_bulk({row.organization_id for row in rows})
    for row in rows:
        if row.by_hand:
            continue
        facts = Facts(row.id, organizations[row.organization_id], row.number, row.subject, row.priority,
                      row.assignee_email, row.first_response_due, row.resolution_due)  # fmt: skip
        breached = "first_response" if row.first_response_breached else "resolution"
        for clock, label in CLOCKS:  # in the order the Python path announces them
            if getattr(row, f"{clock}_at_risk"):
                _announce(facts, f"{clock}_at_risk", clock, label, batch)
            if row.breach and clock == breached:
                _announce(facts, "breach_level_1", clock, label, batch)
    batch.report.checked += sum(1 for row in rows if not row.by_hand)
    by_hand = [row.id for row in rows if row.by_hand]
    if by_hand:  # already locked by this transaction
        tickets = list(Ticket.objects.select_related("assignee").filter(pk__in=by_hand).order_by("id"))
        _check_batch(tickets, now, batch)
    return len(rows), (rows[-1].queued_at, rows[-1].id)


def sla_check(*, now: datetime | None = None, dry_run: bool = False) -> CheckReport:
    """Act on every ticket whose clocks have changed state by ``now``, a batch per transaction."""
    now = now or timezone.now()
    report = CheckReport()
    step = _statement_batch if connection.vendor == "postgresql" else _python_batch
    after = escalation_sql.START
    while True:
        with transaction.atomic():
            batch = Batch(now=now, report=report)
            claimed, after = step(now, after, batch)
            batch.write(dry_run=dry_run)
            if dry_run:
                transaction.set_rollback(True)
        if claimed < BATCH:
            break
    return report
