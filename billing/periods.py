"""Billing cycles: where a contract's billing periods begin and end. Pure: standard library only, plain values in,
plain values out.

Periods
-------
A :class:`Period` is a run of whole days, half-open: ``start`` is its first day and ``end`` the first day of the next
period, so consecutive periods share a date (one's ``end`` is the next one's ``start``) and ``days`` is simply
``end - start``. Everything here works on ``date``; a ``datetime`` (even a naive one) is refused, because which date
an instant falls on depends on the organization's time zone and that conversion belongs to the caller.

Schedules
---------
A :class:`Schedule` says where the boundaries between periods fall, forever in both directions:

- ``WEEKLY``: every date whose ISO weekday is ``anchor_day`` (1 = Monday .. 7 = Sunday).
- ``MONTHLY``, ``QUARTERLY``, ``ANNUAL``: in each *boundary month*, the day ``min(anchor_day, days in that month)``.
  Anchor 31 gives Jan 31, Feb 28 (29 in leap years), Mar 31, Apr 30; anchor 29 gives Feb 28 in common years and
  Feb 29 in leap years. A short month clips the boundary for that month only: the next month is back at the anchor.
  Boundary months are every month (monthly), the months three apart from ``anchor_month`` (quarterly: anchor month 2
  means Feb, May, Aug, Nov) or ``anchor_month`` alone (annual).

The *cycle period* containing a day runs from the last boundary on or before it to the first boundary after it.

Contracts
---------
A contract rarely starts or ends on a boundary. :func:`periods` cuts the days a contract runs, ``[start, until)``,
into :class:`PeriodPiece` values: the billed days (``period``) together with the whole cycle period they belong to
(``cycle_period``), so the caller can prorate a short first or last piece by ``period.days / cycle_period.days``.

Bad input raises ValueError naming the argument.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "MONTHS",
    "Cycle",
    "Period",
    "PeriodPiece",
    "Schedule",
    "boundary_after",
    "boundary_on_or_before",
    "next_period",
    "period_containing",
    "periods",
]


class Cycle(StrEnum):
    WEEKLY = "WEEKLY"
    MONTHLY = "MONTHLY"
    QUARTERLY = "QUARTERLY"
    ANNUAL = "ANNUAL"


MONTHS: Mapping[Cycle, int] = MappingProxyType({Cycle.MONTHLY: 1, Cycle.QUARTERLY: 3, Cycle.ANNUAL: 12})
"""The length in months of each month-based cycle (WEEKLY is not month-based)."""

_WEEK = timedelta(days=7)


def _check_date(value: object, name: str) -> None:
    # datetime is a subclass of date, so it has to be turned away explicitly.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a date (not a datetime), got {value!r}")


def _check_int(value: object, name: str, low: int, high: int, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be {meaning}, a whole number from {low} to {high}, got {value!r}")


@dataclass(frozen=True)
class Period:
    """The days ``start`` up to but not including ``end`` (the next period's start). ``start < end``."""

    start: date
    end: date

    def __post_init__(self) -> None:
        _check_date(self.start, "start")
        _check_date(self.end, "end")
        if self.start >= self.end:
            raise ValueError(f"a period must end after it starts: start {self.start}, end {self.end}")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day: object) -> bool:
        """``day in period``: whether ``day`` is one of the period's days (``start <= day < end``)."""
        return isinstance(day, date) and not isinstance(day, datetime) and self.start <= day < self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class PeriodPiece:
    """The days of one cycle period that are billed.

    ``period`` is the billed piece and ``cycle_period`` the whole cycle period that contains it. They are equal for
    a full period; a contract that starts or ends between boundaries gets a shorter piece (``is_partial``).
    """

    period: Period
    cycle_period: Period

    def __post_init__(self) -> None:
        if not isinstance(self.period, Period):
            raise ValueError(f"period must be a Period, got {self.period!r}")
        if not isinstance(self.cycle_period, Period):
            raise ValueError(f"cycle_period must be a Period, got {self.cycle_period!r}")
        if not (self.cycle_period.start <= self.period.start and self.period.end <= self.cycle_period.end):
            raise ValueError(f"period {self.period} must lie within cycle_period {self.cycle_period}")

    @property
    def is_partial(self) -> bool:
        return self.period != self.cycle_period


@dataclass(frozen=True)
class Schedule:
    """Where the boundaries of a billing cycle fall (rules in the module docstring).

    ``anchor_day`` is the ISO weekday 1 (Monday) .. 7 (Sunday) for WEEKLY, else the day of the month 1..31.
    ``anchor_month`` (1..12) picks the boundary months of QUARTERLY and ANNUAL cycles; the others ignore it.
    """

    cycle: Cycle
    anchor_day: int
    anchor_month: int = 1

    def __post_init__(self) -> None:
        try:
            cycle = Cycle(self.cycle)
        except ValueError:
            raise ValueError(f"cycle must be one of {', '.join(Cycle)}, got {self.cycle!r}") from None
        object.__setattr__(self, "cycle", cycle)
        if cycle is Cycle.WEEKLY:
            _check_int(self.anchor_day, "anchor_day", 1, 7, "an ISO weekday (1 = Monday, 7 = Sunday)")
        else:
            _check_int(self.anchor_day, "anchor_day", 1, 31, "a day of the month")
        _check_int(self.anchor_month, "anchor_month", 1, 12, "a month")

    @classmethod
    def anchored_at(cls, cycle: Cycle, day: date) -> Schedule:
        """The schedule of ``cycle`` that has a boundary on ``day`` (typically a contract's first day): its weekday
        for WEEKLY, else its day of the month and month. Note that a schedule anchored at Feb 28 is anchored at
        day 28, not at the end of the month."""
        _check_date(day, "day")
        if cycle == Cycle.WEEKLY:
            return cls(cycle, day.isoweekday())
        return cls(cycle, day.day, day.month)


def _check_schedule(schedule: object) -> Schedule:
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule, got {schedule!r}")
    return schedule


# Month-based cycles count months as one integer, year * 12 + (month - 1), so "three months on" is "+ 3".


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_boundary(schedule: Schedule, index: int, near: date) -> date:
    """The boundary in the month numbered ``index`` (which must be a boundary month)."""
    year, month = divmod(index, 12)
    month += 1
    if not MINYEAR <= year <= MAXYEAR:
        raise ValueError(f"the billing boundary next to {near} falls outside the years {MINYEAR}..{MAXYEAR}")
    return date(year, month, min(schedule.anchor_day, monthrange(year, month)[1]))


def _add_days(day: date, delta: timedelta, near: date) -> date:
    try:
        return day + delta
    except OverflowError:
        raise ValueError(f"the billing boundary next to {near} falls outside the years {MINYEAR}..{MAXYEAR}") from None


def boundary_on_or_before(schedule: Schedule, day: date) -> date:
    """The last period boundary on or before ``day`` (``day`` itself when it is a boundary)."""
    _check_schedule(schedule)
    _check_date(day, "day")
    if schedule.cycle is Cycle.WEEKLY:
        return _add_days(day, -timedelta(days=(day.isoweekday() - schedule.anchor_day) % 7), day)
    step = MONTHS[schedule.cycle]
    index = _month_index(day)
    index -= (index - (schedule.anchor_month - 1)) % step  # the last boundary month on or before day's month
    boundary = _month_boundary(schedule, index, day)
    return boundary if boundary <= day else _month_boundary(schedule, index - step, day)


def boundary_after(schedule: Schedule, day: date) -> date:
    """The first period boundary strictly after ``day``."""
    _check_schedule(schedule)
    _check_date(day, "day")
    if schedule.cycle is Cycle.WEEKLY:
        return _add_days(boundary_on_or_before(schedule, day), _WEEK, day)
    step = MONTHS[schedule.cycle]
    index = _month_index(day)
    index += (schedule.anchor_month - 1 - index) % step  # the first boundary month on or after day's month
    boundary = _month_boundary(schedule, index, day)
    return boundary if boundary > day else _month_boundary(schedule, index + step, day)


def period_containing(schedule: Schedule, day: date) -> Period:
    """The cycle period that ``day`` falls in: ``start <= day < end``, both boundaries."""
    return Period(boundary_on_or_before(schedule, day), boundary_after(schedule, day))


def next_period(schedule: Schedule, period: Period) -> Period:
    """The cycle period that begins where ``period`` ends.

    For a full cycle period that is the following cycle period. For a short first piece ``[start, boundary)`` it is
    the first full period. A piece that ends between boundaries (a contract's end) is followed by the rest of its
    cycle period.
    """
    _check_schedule(schedule)
    if not isinstance(period, Period):
        raise ValueError(f"period must be a Period, got {period!r}")
    return Period(period.end, boundary_after(schedule, period.end))


def periods(schedule: Schedule, start: date, until: date) -> list[PeriodPiece]:
    """The billed pieces covering the days ``[start, until)``, in order, contiguous and without overlap.

    The first piece begins at ``start`` even when ``start`` is not a boundary (a contract starting mid-period gets a
    short first piece up to the next boundary), and the last one is cut at ``until`` when ``until`` is not a
    boundary. Each piece carries the full cycle period it belongs to. ``until == start`` gives no pieces.
    """
    _check_schedule(schedule)
    _check_date(start, "start")
    _check_date(until, "until")
    if until < start:
        raise ValueError(f"until ({until}) must not be before start ({start})")
    pieces: list[PeriodPiece] = []
    cursor = start
    while cursor < until:
        cycle_period = period_containing(schedule, cursor)
        piece = Period(cursor, min(cycle_period.end, until))
        pieces.append(PeriodPiece(piece, cycle_period))
        cursor = piece.end
    return pieces
