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
from typing import Any

from django.db import connection, transaction
from django.db.models import Field, Q
from django.utils import timezone

from events.services import publish_many
from tenancy.models import Organization
from tickets import routing, sla
from tickets.clocks import SLA_FIELDS, clocks_refresh, targets_apply
from tickets.models import (
    OPEN_STATUSES,
    BusinessCalendar,
    ClockState,
    SlaNotice,
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


def _record_notices(wanted: list[tuple[Ticket, str]], now: datetime) -> set[tuple[uuid.UUID, str]]:
    """Insert the notices in one statement; returns those this run created (the others existed already)."""
    if not wanted:
        return set()
    rows = {(ticket.pk, kind): ticket for ticket, kind in wanted}
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    fields = {field.name: field for field in SlaNotice._meta.fields}
    created_at = fields["created_at"].get_db_prep_value(now, connection)
    for (pk, kind), ticket in rows.items():
        params += [
            fields["organization"].get_db_prep_value(ticket.organization_id, connection),
            fields["ticket"].get_db_prep_value(pk, connection),
            kind,
            created_at,
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {SlaNotice._meta.db_table} (organization_id, ticket_id, kind, created_at) "  # noqa: S608
            f"VALUES {values} ON CONFLICT (ticket_id, kind) DO NOTHING RETURNING ticket_id, kind",
            params,
        )
        return {(uuid.UUID(str(ticket_id)), kind) for ticket_id, kind in cursor.fetchall()}


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
CLOCK_FIELDS = [*SLA_FIELDS, "escalation_level", "updated_at"]
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


def _write_back(tickets: list[Ticket], names: list[str]) -> None:
    """Write the batch's tickets back in one statement. On PostgreSQL that is an ``UPDATE … FROM unnest(<one array per
    column>)``: one round trip, and psycopg adapts the attribute values as they are. Django's ``bulk_update`` builds
    a CASE per field and row, which costs more than the rest of the check together; other databases get one
    parameterised UPDATE per ticket, sent with ``executemany``."""
    if not tickets:
        return
    fields = [field for name in names if isinstance(field := Ticket._meta.get_field(name), Field)]
    quote = connection.ops.quote_name
    table = Ticket._meta.db_table
    if connection.vendor == "postgresql":
        arrays = [[ticket.pk for ticket in tickets]] + [
            [getattr(ticket, str(field.attname)) for ticket in tickets] for field in fields
        ]
        columns = ", ".join(
            f"unnest(%s::{field.cast_db_type(connection)}[]) AS {quote(str(field.column))}" for field in fields
        )
        assignments = ", ".join(f"{quote(str(field.column))} = v.{quote(str(field.column))}" for field in fields)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {quote(table)} SET {assignments} "  # noqa: S608 - names from the model, values as parameters
                f"FROM (SELECT unnest(%s::uuid[]) AS id, {columns}) AS v WHERE {quote(table)}.id = v.id",
                arrays,
            )
        return
    setters = ", ".join(f"{quote(str(field.column))} = %s" for field in fields)
    id_field = Ticket._meta.get_field("id")
    rows = [
        [field.get_db_prep_save(getattr(ticket, field.attname), connection) for field in fields]
        + [id_field.get_db_prep_value(ticket.pk, connection)]
        for ticket in tickets
    ]
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {table} SET {setters} WHERE {quote('id')} = %s", rows)  # noqa: S608


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
        .filter(sla_next_check_at__lte=now, status__in=OPEN_STATUSES)
        .order_by("sla_next_check_at", "id")
    )
    if after is not None:
        due = due.filter(Q(sla_next_check_at__gt=after[0]) | Q(sla_next_check_at=after[0], id__gt=after[1]))
    return list(due[:BATCH])


def _check_batch(tickets: list[Ticket], now: datetime, report: CheckReport, *, dry_run: bool = False) -> None:
    """Re-read the claimed tickets' clocks, record the notices they call for in one INSERT, act on the new ones, and
    write tickets, events and activity back in one statement each."""
    _attach_shared(tickets)
    batch = Batch(now=now, report=report)
    priorities = {ticket.pk: ticket.priority for ticket in tickets}
    plans: list[tuple[Ticket, list[tuple[str, str, str]]]] = []
    for ticket in tickets:
        clocks_refresh(ticket, now)
        plans.append((ticket, _wanted(ticket, now)))
    created = _record_notices([(ticket, kind) for ticket, wanted in plans for kind, _, _ in wanted], now)
    for ticket, wanted in plans:
        moved = False
        for kind, clock, label in wanted:
            if (ticket.pk, kind) in created:
                created.discard((ticket.pk, kind))  # once per ticket and kind, even if both clocks call for it
                moved = _act(ticket, kind, clock, label, batch) or moved
        if moved:
            clocks_refresh(ticket, now)  # the level or the priority moved the next check
        ticket.updated_at = now
    if tickets:
        retargeted = {ticket.pk for ticket in tickets if ticket.priority != priorities[ticket.pk]}
        _write_back([ticket for ticket in tickets if ticket.pk not in retargeted], CLOCK_FIELDS)
        _write_back([ticket for ticket in tickets if ticket.pk in retargeted], RETARGET_FIELDS)
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
            if last.sla_next_check_at is None:  # filtered on being due: never None here
                raise ValueError(f"{last.reference} was claimed without a due check")
            after = (last.sla_next_check_at, last.pk)
            _check_batch(tickets, now, report, dry_run=dry_run)
            if dry_run:
                transaction.set_rollback(True)
        if len(tickets) < BATCH:
            break
    return report
