"""SLA performance of an organization's service desk: compliance of the first-response and resolution clocks and
the median first response, over recent windows and per priority. Read by the portal's performance page and, later,
the SLA report API."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Q

from tenancy.models import Organization
from tickets.models import ClockState, Priority, Ticket

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


def _measures(within: Q) -> dict[str, Any]:
    responded = within & Q(first_responded_at__isnull=False)
    measures: dict[str, Any] = {
        "tickets": Count("pk", filter=within),
        "first_response_met": Count("pk", filter=within & Q(first_response_state=ClockState.MET)),
        "first_response_breached": Count("pk", filter=within & Q(first_response_state=ClockState.BREACHED)),
        "resolution_met": Count("pk", filter=within & Q(resolution_state=ClockState.MET)),
        "resolution_breached": Count("pk", filter=within & Q(resolution_state=ClockState.BREACHED)),
    }
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
    priority over the longest window. Compliance is met / (met + breached) of the stored clock states (clocks
    still running count once they breach); the response time is wall-clock time from opening to the first public
    staff reply. Two queries (three without PostgreSQL), whatever the number of tickets."""
    longest = max(windows)
    tickets = Ticket.objects.for_org(organization).filter(
        merged_into__isnull=True, created_at__gte=now - timedelta(days=longest)
    )
    since = {days: now - timedelta(days=days) for days in windows}
    # Query 1: every measure of every window at once.
    aggregates: dict[str, Any] = {}
    for days in windows:
        for name, measure in _measures(Q(created_at__gte=since[days])).items():
            aggregates[f"{name}_{days}"] = measure
    totals = tickets.aggregate(**aggregates)
    # Query 2: the longest window per priority.
    per_priority = {
        row["priority"]: row for row in tickets.values("priority").annotate(**_measures(Q())).order_by("priority")
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
