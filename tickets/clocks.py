"""Reading a ticket's SLA clocks (``tickets.sla``) and storing the reading on the ticket.

Which targets apply: the organization's own policy, else its tier's, else the defaults in ``sla.DEFAULT_POLICIES``.
Which hours: the policy's calendar, else the organization's business calendar (created on first use in its time
zone, with its country's public holidays from the ``holidays`` package, editable in admin).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import holidays as public_holidays
from django.utils import timezone

from tenancy.models import Organization
from tickets import sla
from tickets.models import DONE_STATUSES, PAUSED_STATUSES, BusinessCalendar, ClockState, SlaPolicy, Ticket

HOLIDAY_YEARS_AHEAD = 2
# Fields ``clocks_refresh`` writes.
SLA_FIELDS = [
    "first_response_due",
    "resolution_due",
    "first_response_state",
    "resolution_state",
    "sla_remaining_seconds",
    "first_response_risk_at",
    "resolution_risk_at",
    "sla_next_check_at",
]


def organization_calendar(organization: Organization) -> BusinessCalendar:
    """The organization's business calendar: Mon-Fri 08:00-18:00 local, its country's public holidays."""
    existing = BusinessCalendar.objects.filter(organization=organization).order_by("pk").first()
    if existing is not None:
        return existing
    year = timezone.now().year
    holiday_list: list[str] = []
    # A country the package does not cover gets no public holidays until staff add them.
    if organization.country in public_holidays.list_supported_countries():
        days = public_holidays.country_holidays(organization.country, years=range(year, year + HOLIDAY_YEARS_AHEAD + 1))
        holiday_list = sorted(day.isoformat() for day in days)
    # Two first tickets at once may each create one; the oldest is used, and staff may delete the other.
    return BusinessCalendar.objects.create(
        organization=organization,
        name=f"{organization.name} business hours",
        timezone=organization.timezone,
        holidays=holiday_list,
    )


def policy_for(organization: Organization) -> SlaPolicy | None:
    own = SlaPolicy.objects.filter(organization=organization, active=True).first()
    return own or SlaPolicy.objects.filter(organization=None, tier=organization.tier, active=True).first()


def targets_apply(ticket: Ticket) -> None:
    """Set the ticket's targets for its priority (on creation, and when the priority changes)."""
    policy = policy_for(ticket.organization)
    if policy is not None and ticket.priority in policy.targets:
        target = policy.target(ticket.priority)
        ticket.at_risk_ratio = policy.at_risk_ratio
    else:
        target = sla.DEFAULT_POLICIES[ticket.organization.tier][ticket.priority]
        ticket.at_risk_ratio = Decimal("0.80")
    ticket.sla_policy = policy
    ticket.sla_calendar = (
        policy.calendar if policy is not None and policy.calendar else organization_calendar(ticket.organization)
    )
    ticket.sla_always_on = target.always_on
    ticket.first_response_target = target.first_response
    ticket.resolution_target = target.resolution


@lru_cache(maxsize=512)
def _calendar(timezone_name: str, hours: tuple[tuple[int, int, int], ...], holidays: tuple[str, ...]) -> sla.Calendar:
    # Keyed on the calendar's content: building one validates it, and the breach check reads thousands of tickets.
    return BusinessCalendar(timezone=timezone_name, hours=hours, holidays=list(holidays)).as_calendar()


@lru_cache(maxsize=64)
def _always(timezone_name: str) -> sla.Calendar:
    return sla.Calendar.always(timezone_name)


def calendar_of(ticket: Ticket) -> sla.Calendar:
    row = ticket.sla_calendar
    if row is None or row.always_open or ticket.sla_always_on:
        return _always(row.timezone if row else ticket.organization.timezone)
    hours = tuple((int(day), int(start), int(end)) for day, start, end in row.hours)
    return _calendar(row.timezone, hours, tuple(row.holidays))


def pauses_of(ticket: Ticket) -> list[sla.Pause]:
    return [
        (datetime.fromisoformat(start), datetime.fromisoformat(end) if end else None)
        for start, end in ticket.sla_pauses
    ]


def pause_open(ticket: Ticket, at: datetime) -> None:
    if not ticket.sla_pauses or ticket.sla_pauses[-1][1] is not None:
        ticket.sla_pauses = [*ticket.sla_pauses, [at.isoformat(), None]]


def pause_close(ticket: Ticket, at: datetime) -> None:
    if ticket.sla_pauses and ticket.sla_pauses[-1][1] is None:
        ticket.sla_pauses = [*ticket.sla_pauses[:-1], [ticket.sla_pauses[-1][0], at.isoformat()]]


def readings(ticket: Ticket, now: datetime) -> tuple[sla.ClockReading | None, sla.ClockReading | None]:
    """(first response, resolution) at ``now``; None for a clock without a target."""
    calendar = calendar_of(ticket)
    ratio = float(ticket.at_risk_ratio)
    first = resolution = None
    if ticket.first_response_target is not None:
        # Waiting on the customer does not pause the first response: only a public staff reply stops it.
        # Resolving a ticket nobody replied to publicly answers it too: the first-response clock stops there.
        answered = ticket.first_responded_at or (ticket.resolved_at if ticket.status in DONE_STATUSES else None)
        first = sla.clock_evaluate(calendar, ticket.sla_started_at, ticket.first_response_target, (), now,
                                   stopped_at=answered, at_risk_ratio=ratio)  # fmt: skip
    if ticket.resolution_target is not None:
        stopped = ticket.resolved_at if ticket.status in DONE_STATUSES else None
        resolution = sla.clock_evaluate(calendar, ticket.sla_started_at, ticket.resolution_target, pauses_of(ticket),
                                        now, stopped_at=stopped, at_risk_ratio=ratio)  # fmt: skip
    return first, resolution


def _risk_at(ticket: Ticket, reading: sla.ClockReading | None, target: timedelta | None,
             pauses: list[sla.Pause]) -> datetime | None:  # fmt: skip
    """When a clock that is running and not yet at risk turns at risk; None for any other clock."""
    if reading is None or target is None or reading.due is None or reading.state != sla.ClockState.OK:
        return None
    return sla.clock_due(calendar_of(ticket), ticket.sla_started_at, target * float(ticket.at_risk_ratio), pauses)


def next_change(state: str, risk_at: datetime | None, due: datetime | None, target: timedelta | None,
                level: int) -> datetime | None:  # fmt: skip
    """When a clock next changes state by itself: at risk, breached, or time for the next escalation. From the stored
    reading alone (the breach check's SQL follows the same rules)."""
    if due is None or target is None:
        return None
    if state == ClockState.OK:
        return risk_at
    if state == ClockState.AT_RISK:
        return due
    if state == ClockState.BREACHED and level < 2:
        return due + target / 2 if level == 1 else due
    return None


def clocks_refresh(ticket: Ticket, now: datetime | None = None) -> None:
    """Store the clocks' reading on ``ticket`` (not saved: callers save ``SLA_FIELDS`` with their own)."""
    now = now or timezone.now()
    first, resolution = readings(ticket, now)
    ticket.first_response_due = first.due if first else None
    ticket.first_response_state = first.state.value if first else ClockState.MET
    ticket.resolution_due = resolution.due if resolution else None
    ticket.resolution_state = resolution.state.value if resolution else ClockState.MET
    running = [
        reading
        for reading in (first, resolution)
        if reading is not None and reading.state not in (sla.ClockState.MET, sla.ClockState.PAUSED)
    ]
    nearest = min(running, key=lambda reading: reading.remaining, default=None)
    ticket.sla_remaining_seconds = int(nearest.remaining.total_seconds()) if nearest else None
    if ticket.status in DONE_STATUSES:
        ticket.first_response_risk_at = ticket.resolution_risk_at = ticket.sla_next_check_at = None
        return
    pauses = pauses_of(ticket) if ticket.status in PAUSED_STATUSES or ticket.sla_pauses else []
    ticket.first_response_risk_at = _risk_at(ticket, first, ticket.first_response_target, [])
    ticket.resolution_risk_at = _risk_at(ticket, resolution, ticket.resolution_target, pauses)
    level = ticket.escalation_level
    candidates = [
        next_change(ticket.first_response_state, ticket.first_response_risk_at, ticket.first_response_due,
                    ticket.first_response_target, level),
        next_change(ticket.resolution_state, ticket.resolution_risk_at, ticket.resolution_due,
                    ticket.resolution_target, level),
    ]  # fmt: skip
    ticket.sla_next_check_at = min((when for when in candidates if when is not None), default=None)
