"""SLA reports of the service desk, read by the partner API, the staff report page and the portal.

``sla_report`` covers the tickets opened in a window ``[start, end)``: per clock (first response, resolution) how
many met or breached their target, the compliance (met / (met + breached), one decimal), the median and mean
business time of the clocks that stopped, and the tickets with a breach; and the backlog (open tickets now, by age).
Overall, and per priority, organization or technician (the assignee).

``sla_performance`` is the portal's smaller view of one organization over rolling windows (the last 30 and 90 days):
the same met and breached clocks, and wall-clock response times, as its page explains to customers.

Report windows given as dates are UTC days (``report_period``): ``from`` is inclusive, ``to`` inclusive as a whole
day, so the window ends at the next UTC midnight. A fixed zone keeps partner-wide reports over organizations in
different zones well defined; the response states the exact instants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.utils import timezone

from tenancy.models import Organization
from tickets import sla
from tickets.clocks import calendar_of, pauses_of
from tickets.models import DONE_STATUSES, OPEN_STATUSES, ClockState, Priority, Ticket

# -- the portal's performance page ---------------------------------------------------------------------------------

PERFORMANCE_WINDOWS = (30, 90)


class Median(Aggregate):
    """PostgreSQL's continuous median (``percentile_cont(0.5)``) of a duration."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


@dataclass(frozen=True)
class Performance:
    label: str
    tickets: int
    first_response_met: int
    first_response_breached: int
    resolution_met: int
    resolution_breached: int
    median_first_response: timedelta | None

    @staticmethod
    def _percent(met: int, breached: int) -> float | None:
        return round(100 * met / (met + breached), 1) if met + breached else None

    @property
    def first_response_compliance(self) -> float | None:
        return self._percent(self.first_response_met, self.first_response_breached)

    @property
    def resolution_compliance(self) -> float | None:
        return self._percent(self.resolution_met, self.resolution_breached)


RESPONSE_TIME = ExpressionWrapper(F("first_responded_at") - F("created_at"), output_field=DurationField())


def _measures(within: Q, now: datetime) -> dict[str, Any]:
    responded = within & Q(first_responded_at__isnull=False)
    measures: dict[str, Any] = {"tickets": Count("pk", filter=within)}
    for clock in ("first_response", "resolution"):
        met, breached = clock_outcomes(clock, now)
        measures[f"{clock}_met"] = Count("pk", filter=within & met)
        measures[f"{clock}_breached"] = Count("pk", filter=within & breached)
    if connection.vendor == "postgresql":
        measures["median_first_response"] = Median(RESPONSE_TIME, filter=responded)
    return measures


def _median(values: list[timedelta]) -> timedelta:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _python_medians(rows: Sequence[tuple[str, datetime, datetime]], key: Any) -> dict[Any, timedelta]:
    # Databases without percentile_cont (SQLite, for `make run`): the response times of the window, in Python.
    groups: dict[Any, list[timedelta]] = defaultdict(list)
    for priority, created, responded in rows:
        for group in key(priority, created):
            groups[group].append(responded - created)
    return {group: _median(times) for group, times in groups.items()}


def sla_performance(
    organization: Organization, *, now: datetime, windows: Sequence[int] = PERFORMANCE_WINDOWS
) -> tuple[list[Performance], list[Performance]]:
    """The organization's SLA performance over the tickets opened in each of the last ``windows`` days, and per
    priority over the longest window. Compliance is met / (met + breached), decided as in the staff report
    (``clock_outcomes``: a clock still running past its due time is breached already); the response time is
    wall-clock time from opening to the first public staff reply. Two queries (three without PostgreSQL), whatever
    the number of tickets."""
    longest = max(windows)
    tickets = Ticket.objects.for_org(organization).filter(
        merged_into__isnull=True, created_at__gte=now - timedelta(days=longest)
    )
    since = {days: now - timedelta(days=days) for days in windows}
    # Query 1: every measure of every window at once.
    aggregates: dict[str, Any] = {}
    for days in windows:
        for name, measure in _measures(Q(created_at__gte=since[days]), now).items():
            aggregates[f"{name}_{days}"] = measure
    totals = tickets.aggregate(**aggregates)
    # Query 2: the longest window per priority.
    per_priority = {
        row["priority"]: row for row in tickets.values("priority").annotate(**_measures(Q(), now)).order_by("priority")
    }
    medians: dict[Any, timedelta] = {}
    if connection.vendor != "postgresql":
        rows = list(
            tickets.filter(first_responded_at__isnull=False).values_list("priority", "created_at", "first_responded_at")
        )
        medians = _python_medians(
            rows, lambda priority, created: [priority, *(days for days in windows if created >= since[days])]
        )

    def performance(label: str, values: dict[str, Any], suffix: str, group: Any) -> Performance:
        return Performance(
            label=label,
            tickets=values.get(f"tickets{suffix}") or 0,
            first_response_met=values.get(f"first_response_met{suffix}") or 0,
            first_response_breached=values.get(f"first_response_breached{suffix}") or 0,
            resolution_met=values.get(f"resolution_met{suffix}") or 0,
            resolution_breached=values.get(f"resolution_breached{suffix}") or 0,
            median_first_response=values.get(f"median_first_response{suffix}", medians.get(group)),
        )

    periods = [performance(f"Last {days} days", totals, f"_{days}", days) for days in windows]
    priorities = [performance(label, per_priority.get(value, {}), "", value) for value, label in Priority.choices]
    return periods, priorities


# -- the SLA report ------------------------------------------------------------------------------------------------

GROUP_BY = ("priority", "organization", "technician")
MAX_REPORT_DAYS = 366
REPORT_ZONE = UTC
RUNNING_STATES = (ClockState.OK, ClockState.AT_RISK)


def clock_outcomes(clock: str, now: datetime) -> tuple[Q, Q]:
    """(met, breached) filters of one clock, ``"first_response"`` or ``"resolution"``, at ``now``.

    Met and breached are the stored states, except that a clock still running whose due time has passed is breached
    already (the stored state waits for the next SLA check). A clock without a target is neither, nor is a paused
    clock or one still running in time: those are not decided yet."""
    has_target = Q(**{f"{clock}_target__isnull": False})
    met = has_target & Q(**{f"{clock}_state": ClockState.MET})
    overdue = Q(**{f"{clock}_state__in": RUNNING_STATES, f"{clock}_due__lte": now})
    breached = has_target & (Q(**{f"{clock}_state": ClockState.BREACHED}) | overdue)
    return met, breached


def compliance(met: int, breached: int) -> Decimal | None:
    """Met / (met + breached) in percent, one decimal (half up); None when no clock was decided."""
    if not met + breached:
        return None
    return (Decimal(100 * met) / Decimal(met + breached)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ReportPeriod:
    """Whole UTC days from ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=REPORT_ZONE)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight after ``last``."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=REPORT_ZONE)


def report_period(first: date, last: date) -> ReportPeriod:
    """The period from ``first`` to ``last`` (the ``from`` and ``to`` of a request); a ValidationError naming ``to``
    when it ends before it starts or spans more than ``MAX_REPORT_DAYS`` days."""
    if last < first:
        raise ValidationError({"to": ["Must be on or after from."]})
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise ValidationError({"to": [f"The report covers at most {MAX_REPORT_DAYS} days; choose a shorter range."]})
    return ReportPeriod(first, last)


@dataclass(frozen=True)
class AgeBucket:
    """Open tickets at least ``low`` and less than ``high`` old (no upper bound when ``high`` is None)."""

    key: str
    label: str
    low: timedelta
    high: timedelta | None


AGE_BUCKETS = (
    AgeBucket("under_1_day", "Under 1 day", timedelta(0), timedelta(days=1)),
    AgeBucket("days_1_to_3", "1 to 3 days", timedelta(days=1), timedelta(days=3)),
    AgeBucket("days_3_to_7", "3 to 7 days", timedelta(days=3), timedelta(days=7)),
    AgeBucket("days_7_to_30", "7 to 30 days", timedelta(days=7), timedelta(days=30)),
    AgeBucket("over_30_days", "Over 30 days", timedelta(days=30), None),
)


@dataclass(frozen=True)
class ClockFigures:
    """One clock over a set of tickets. The times are business seconds of the clocks that stopped, with a target or
    without one."""

    met: int
    breached: int
    median_seconds: int | None
    mean_seconds: int | None

    @property
    def compliance(self) -> Decimal | None:
        return compliance(self.met, self.breached)


@dataclass(frozen=True)
class SlaFigures:
    """The report of one group (or of everything, ``key`` None and label "All tickets")."""

    key: str | None
    label: str
    tickets: int
    first_response: ClockFigures
    resolution: ClockFigures
    breached_tickets: int  # tickets with either clock breached
    backlog: tuple[int, ...]  # open tickets now, per AGE_BUCKETS

    @property
    def backlog_total(self) -> int:
        return sum(self.backlog)

    @property
    def backlog_counts(self) -> dict[str, int]:
        return {"total": self.backlog_total, **{b.key: n for b, n in zip(AGE_BUCKETS, self.backlog, strict=True)}}


@dataclass(frozen=True)
class SlaReport:
    start: datetime
    end: datetime
    group_by: str | None
    generated_at: datetime  # the instant the backlog and the clocks still running were read
    overall: SlaFigures
    groups: list[SlaFigures]

    @property
    def first_day(self) -> date:
        return self.start.astimezone(REPORT_ZONE).date()

    @property
    def last_day(self) -> date:
        """The last day the period touches (the day before ``end`` when it ends at midnight)."""
        return (self.end - timedelta(microseconds=1)).astimezone(REPORT_ZONE).date()


@dataclass(frozen=True)
class _Grouping:
    """How tickets fall into groups: ``field`` on a ticket row; ``labels`` the values read beside it to name a group.
    ``key`` and ``label`` turn one row of those values into the group's public key and name."""

    field: str
    labels: tuple[str, ...]
    key: Callable[[dict[str, Any]], str | None]
    label: Callable[[dict[str, Any]], str]


GROUPINGS = {
    "priority": _Grouping("priority", (), lambda row: row["priority"], lambda row: Priority(row["priority"]).label),
    "organization": _Grouping(
        "organization_id",
        ("organization__slug", "organization__name"),
        lambda row: row["organization__slug"],
        lambda row: row["organization__name"],
    ),
    "technician": _Grouping(
        "assignee_id",
        ("assignee__full_name", "assignee__email"),
        lambda row: None if row["assignee_id"] is None else str(row["assignee_id"]),
        lambda row: (row["assignee__full_name"] or row["assignee__email"]) if row["assignee_id"] else "Unassigned",
    ),
}
_COUNTS = ("tickets", "first_response_met", "first_response_breached", "resolution_met", "resolution_breached",
           "breached_tickets")  # fmt: skip
# What the time measurement reads of a ticket (``tickets.clocks.calendar_of`` and ``pauses_of``).
_CLOCK_FIELDS = (
    "organization_id",
    "priority",
    "assignee_id",
    "status",
    "sla_started_at",
    "sla_pauses",
    "sla_always_on",
    "first_responded_at",
    "resolved_at",
    "organization__timezone",
    "sla_calendar__timezone",
    "sla_calendar__always_open",
    "sla_calendar__hours",
    "sla_calendar__holidays",
)
_CHUNK = 2000


def _count_measures(now: datetime) -> dict[str, Any]:
    first_met, first_breached = clock_outcomes("first_response", now)
    resolution_met, resolution_breached = clock_outcomes("resolution", now)
    return {
        "tickets": Count("pk"),
        "first_response_met": Count("pk", filter=first_met),
        "first_response_breached": Count("pk", filter=first_breached),
        "resolution_met": Count("pk", filter=resolution_met),
        "resolution_breached": Count("pk", filter=resolution_breached),
        "breached_tickets": Count("pk", filter=first_breached | resolution_breached),
    }


def _backlog_measures(now: datetime) -> dict[str, Any]:
    measures: dict[str, Any] = {}
    for bucket in AGE_BUCKETS:
        # Age at least ``low``: opened at or before now - low (the youngest bucket also takes clock skew's future).
        window = Q(created_at__lte=now - bucket.low) if bucket.low else Q()
        if bucket.high is not None:
            window &= Q(created_at__gt=now - bucket.high)
        measures[bucket.key] = Count("pk", filter=window)
    return measures


def _grouped(tickets: QuerySet[Ticket], grouping: _Grouping | None, measures: dict[str, Any]) -> list[dict[str, Any]]:
    """One row of ``measures`` per group (the group's field and label values included), or one row overall."""
    if grouping is None:
        return [tickets.aggregate(**measures)]
    # order_by(): an ordering would join the GROUP BY.
    return list(tickets.values(grouping.field, *grouping.labels).annotate(**measures).order_by())


def _stopped_times(ticket: Ticket) -> tuple[timedelta | None, timedelta | None]:
    """Business time the ticket's (first response, resolution) clocks ran until they stopped; None while running.

    The same rules as ``tickets.clocks.readings``: the first-response clock stops at the first public staff reply,
    or at resolution when nobody replied; the resolution clock stops at resolution and does not run while paused."""
    calendar = calendar_of(ticket)
    done = ticket.status in DONE_STATUSES
    answered = ticket.first_responded_at or (ticket.resolved_at if done else None)
    first = resolution = None
    if answered is not None:
        first = sla.clock_elapsed(calendar, ticket.sla_started_at, (), answered)
    if done and ticket.resolved_at is not None:
        resolution = sla.clock_elapsed(calendar, ticket.sla_started_at, pauses_of(ticket), ticket.resolved_at)
    return first, resolution


def _median_and_mean(values: list[timedelta]) -> tuple[int | None, int | None]:
    """Whole seconds, rounded half up."""
    if not values:
        return None, None
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    mean = sum(ordered, timedelta()) / len(ordered)

    def seconds(value: timedelta) -> int:
        return int(Decimal(value // timedelta(microseconds=1)).scaleb(-6).quantize(Decimal(1), ROUND_HALF_UP))

    return seconds(median), seconds(mean)


@dataclass
class _Times:
    first_response: list[timedelta]
    resolution: list[timedelta]


def sla_report(
    *,
    tickets: QuerySet[Ticket],
    start: datetime,
    end: datetime,
    group_by: str | None = None,
    now: datetime | None = None,
) -> SlaReport:
    """The SLA report of ``tickets`` (the caller's tenant-scoped queryset, e.g. ``Ticket.objects.for_orgs(...)``)
    opened in ``[start, end)``, overall and per ``group_by`` (one of ``GROUP_BY``, or None), with the backlog of
    those of ``tickets`` open at ``now``. Merged duplicates count nowhere.

    Priorities are always listed, all four; organizations and technicians when they have tickets in the window or in
    the backlog (unassigned tickets form one technician group, key None). Three queries, whatever the number of
    tickets and groups: the counts; the tickets whose clocks stopped, streamed, for their business times; and the
    backlog."""
    if group_by is not None and group_by not in GROUPINGS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BY)} or None, got {group_by!r}")
    now = now or timezone.now()
    grouping = GROUPINGS[group_by] if group_by else None
    scoped = tickets.filter(merged_into__isnull=True).select_related(None).order_by()
    opened = scoped.filter(created_at__gte=start, created_at__lt=end)

    # Query 1: the clocks' outcomes.
    counts = _grouped(opened, grouping, _count_measures(now))
    # Query 2: the business times of the clocks that stopped, measured here (they depend on each ticket's calendar
    # and pauses), a chunk of rows at a time.
    stopped = (
        opened.filter(Q(first_responded_at__isnull=False) | Q(status__in=DONE_STATUSES, resolved_at__isnull=False))
        .select_related("organization", "sla_calendar")
        .only(*_CLOCK_FIELDS)
    )
    times: dict[Any, _Times] = defaultdict(lambda: _Times([], []))
    overall_times = _Times([], [])
    for ticket in stopped.iterator(chunk_size=_CHUNK):
        first, resolution = _stopped_times(ticket)
        buckets = [overall_times]
        if grouping is not None:
            buckets.append(times[getattr(ticket, grouping.field)])
        for bucket in buckets:
            if first is not None:
                bucket.first_response.append(first)
            if resolution is not None:
                bucket.resolution.append(resolution)
    # Query 3: the backlog.
    backlog = _grouped(scoped.filter(status__in=OPEN_STATUSES), grouping, _backlog_measures(now))

    def figures(key: str | None, label: str, count_row: dict[str, Any], backlog_row: dict[str, Any],
                measured: _Times) -> SlaFigures:  # fmt: skip
        first_median, first_mean = _median_and_mean(measured.first_response)
        resolution_median, resolution_mean = _median_and_mean(measured.resolution)
        return SlaFigures(
            key=key,
            label=label,
            tickets=count_row.get("tickets") or 0,
            first_response=ClockFigures(
                count_row.get("first_response_met") or 0,
                count_row.get("first_response_breached") or 0,
                first_median,
                first_mean,
            ),
            resolution=ClockFigures(
                count_row.get("resolution_met") or 0,
                count_row.get("resolution_breached") or 0,
                resolution_median,
                resolution_mean,
            ),
            breached_tickets=count_row.get("breached_tickets") or 0,
            backlog=tuple(backlog_row.get(bucket.key) or 0 for bucket in AGE_BUCKETS),
        )

    def total(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
        return {name: sum(row.get(name) or 0 for row in rows) for name in names}

    overall = figures(
        None,
        "All tickets",
        total(counts, _COUNTS),
        total(backlog, [bucket.key for bucket in AGE_BUCKETS]),
        overall_times,
    )
    groups: list[SlaFigures] = []
    if grouping is not None:
        counts_by = {row[grouping.field]: row for row in counts}
        backlog_by = {row[grouping.field]: row for row in backlog}
        names = {row[grouping.field]: row for row in (*backlog, *counts)}
        if group_by == "priority":
            names = {value: {"priority": value} for value in Priority.values}
        for ident, row in names.items():
            measured = times.get(ident, _Times([], []))
            counted, waiting = counts_by.get(ident, {}), backlog_by.get(ident, {})
            groups.append(figures(grouping.key(row), grouping.label(row), counted, waiting, measured))
        if group_by != "priority":
            # By name; unassigned tickets last.
            groups.sort(key=lambda group: (group.key is None, group.label.casefold(), group.key or ""))
    return SlaReport(start=start, end=end, group_by=group_by, generated_at=now, overall=overall, groups=groups)
