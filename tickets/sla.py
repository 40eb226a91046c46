"""SLA business time and clocks. Pure: standard library only, plain values in, plain values out.

Business time
-------------
A :class:`Calendar` names an IANA time zone, weekly working intervals in local wall-clock minutes and whole local
days off. An instant is *business time* when the local clock at that instant reads a working minute of a working day:
its (weekday, minute of day) falls in one of the intervals and its local date is not a holiday. Everything else
follows from that one rule, which is also how a person at the help desk would read the clock:

- DST days keep the same wall-clock hours. Working time that the clock skips (spring forward) is simply lost;
  working time that the clock shows twice (fall back) counts twice, because someone is at work for both readings,
  so a 00:00-06:00 window lasts 7 real hours on the autumn night and 5 in spring. Nothing ambiguous has to be
  guessed on the way in: arguments are instants (aware datetimes; ``fold`` is respected), every function works on
  the UTC timeline and only asks the zone what its clock reads.
- ``Calendar.always(zone)`` (every minute of every day) therefore measures plain elapsed time, DST or not.
- Intervals are half-open: with 08:00-18:00, 08:00 is business time and 18:00 is not.

Durations are real time: one business hour is 3,600 real seconds spent in business time. Results are returned in
the time zone of the argument they are measured from (``start``, ``at``), converted with ``astimezone`` so the
``fold`` of a repeated local hour is right. A zero duration returns ``start`` itself, in or out of business time
(a zero target is due at once).

Nothing walks minute by minute. The timeline is cut into stretches of constant UTC offset, where the wall clock is
the UTC clock plus a constant, and each stretch is walked a local day at a time, interval by interval. The zone is
probed every two days and an offset change is located by bisection; that relies on no zone changing its offset
twice within two days, which holds for every zone in the IANA database (the closest pair ever is four days apart).

SLA clocks
----------
A clock starts at ``start`` and accrues business time except while paused (e.g. a ticket waiting on the customer).
A :data:`Pause` is ``(paused_at, resumed_at)``, with ``None`` for a pause still running. Pauses may overlap and may
begin before the clock starts; they are clipped and merged. ``clock_evaluate`` gives the state at ``now``:

- stopped (first response given, ticket resolved): ``met`` when it stopped at or before the due time, else
  ``breached``;
- paused (a pause is running at ``now``): ``paused``, unless the target was already reached before the pause began,
  which stays ``breached``;
- otherwise ``breached`` once elapsed >= target, ``at_risk`` once elapsed >= at_risk_ratio x target, else ``ok``.

Policies
--------
:data:`DEFAULT_POLICIES` holds the default first-response and resolution targets by tier and priority. A target with
``always_on`` runs on a 24x7 calendar in the organization's zone (:func:`calendar_for`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_POLICIES",
    "EVERY_DAY",
    "MINUTES_PER_DAY",
    "PRIORITY_WEIGHTS",
    "WEEKDAYS",
    "Calendar",
    "ClockReading",
    "ClockState",
    "Pause",
    "Priority",
    "Target",
    "Tier",
    "WorkingInterval",
    "add_business_time",
    "business_time_between",
    "calendar_for",
    "clock_due",
    "clock_elapsed",
    "clock_evaluate",
    "is_business_time",
    "next_business_start",
    "raise_priority",
]

WorkingInterval = tuple[int, int, int]
"""(weekday 0=Monday..6=Sunday, start minute of the local day, end minute; the end may be 1440, midnight)."""

Pause = tuple[datetime, datetime | None]
"""(paused at, resumed at); resumed at is None while the pause is still running."""

MINUTES_PER_DAY = 1440
WEEKDAYS = (0, 1, 2, 3, 4)
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Internally every instant is an int of microseconds since the Unix epoch (UTC), and every wall-clock reading the same
# count shifted by the UTC offset: exact, cheap, and free of naive datetimes.
_ONE_US = timedelta(microseconds=1)
_MINUTE = 60_000_000
_DAY = MINUTES_PER_DAY * _MINUTE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_EPOCH_WEEKDAY = _EPOCH.weekday()
_PROBE = 2 * _DAY
_LAST = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _ONE_US - _PROBE  # the time zones' offsets stay representable


# -- calendars ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A calendar compiled for arithmetic: working spans per weekday in microseconds of the local day."""

    zone: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...]
    days_off: frozenset[int]  # holidays, as days since 1970-01-01
    always: bool = False  # every instant is business time: business time is elapsed time, whatever the offsets

    def working(self, day: int) -> tuple[tuple[int, int], ...]:
        if day in self.days_off:
            return ()
        return self.week[(day + _EPOCH_WEEKDAY) % 7]


@dataclass(frozen=True)
class Calendar:
    """Weekly working hours in a time zone, with whole local days off.

    ``hours`` are (weekday, start minute, end minute) triples, 0=Monday and 0 <= start < end <= 1440; intervals of
    one weekday must not overlap (they may touch). A shift that crosses midnight is two intervals, one on each day
    (see :meth:`business`); a holiday stops all work on its local date, including the tail of an overnight shift.
    Hours are kept sorted, so equal calendars compare equal. Bad input raises ValueError.
    """

    timezone: str
    hours: tuple[WorkingInterval, ...]
    holidays: frozenset[date] = frozenset()
    _plan: _Plan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone = _zone(self.timezone)
        hours = _validated_hours(self.hours)
        holidays = _validated_holidays(self.holidays)
        week = tuple(
            tuple((begin * _MINUTE, end * _MINUTE) for day, begin, end in hours if day == weekday)
            for weekday in range(7)
        )
        days_off = frozenset(holiday.toordinal() - _EPOCH_ORDINAL for holiday in holidays)
        object.__setattr__(self, "hours", hours)
        object.__setattr__(self, "holidays", holidays)
        always = not days_off and all(day == ((0, _DAY),) for day in week)
        object.__setattr__(self, "_plan", _Plan(zone, week, days_off, always))

    @classmethod
    def business(
        cls,
        timezone: str,
        start: time = time(8),
        end: time = time(18),
        days: Iterable[int] = WEEKDAYS,
        holidays: Iterable[date] = (),
    ) -> Calendar:
        """The same hours on each of ``days`` (default Monday to Friday, 08:00-18:00).

        ``end`` of 00:00 means midnight at the end of the day. An ``end`` before ``start`` is an overnight shift:
        22:00-06:00 on Monday works Monday 22:00-24:00 and Tuesday 00:00-06:00.
        """
        first = _minute_of_day(start, "start")
        last = _minute_of_day(end, "end") or MINUTES_PER_DAY
        if first == last:
            raise ValueError("start and end must differ; use Calendar.always() for round-the-clock cover")
        hours: list[WorkingInterval] = []
        for day in sorted(set(days)):
            if not 0 <= day <= 6:
                raise ValueError(f"days must be weekdays 0 (Monday) to 6 (Sunday), got {day}")
            if first < last:
                hours.append((day, first, last))
            else:
                hours += [(day, first, MINUTES_PER_DAY), ((day + 1) % 7, 0, last)]
        return cls(timezone, tuple(hours), frozenset(holidays))

    @classmethod
    def always(cls, timezone: str) -> Calendar:
        """24x7: every instant is business time, holidays included, so business time is elapsed time."""
        return cls(timezone, tuple((day, 0, MINUTES_PER_DAY) for day in EVERY_DAY))

    @property
    def zone(self) -> ZoneInfo:
        return self._plan.zone


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone must be an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _validated_hours(hours: object) -> tuple[WorkingInterval, ...]:
    if not isinstance(hours, tuple | list):
        raise ValueError("hours must be a tuple of (weekday, start minute, end minute) triples")
    checked: list[WorkingInterval] = []
    for index, item in enumerate(hours):
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise ValueError(f"hours[{index}] must be (weekday, start minute, end minute), got {item!r}")
        weekday, begin, end = item
        if not all(isinstance(value, int) and not isinstance(value, bool) for value in item):
            raise ValueError(f"hours[{index}] must hold whole numbers, got {item!r}")
        if not 0 <= weekday <= 6:
            raise ValueError(f"hours[{index}]: weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
        if not 0 <= begin < end <= MINUTES_PER_DAY:
            raise ValueError(
                f"hours[{index}]: need 0 <= start < end <= {MINUTES_PER_DAY} minutes of the day, got {begin}-{end}"
            )
        checked.append((weekday, begin, end))
    if not checked:
        raise ValueError("a calendar needs at least one working interval, or no business time would ever pass")
    checked.sort()
    for (day, begin, end), (next_day, next_begin, next_end) in pairwise(checked):
        if day == next_day and next_begin < end:
            raise ValueError(
                f"working intervals overlap on {_DAY_NAMES[day]}: "
                f"{_hhmm(begin)}-{_hhmm(end)} and {_hhmm(next_begin)}-{_hhmm(next_end)}"
            )
    return tuple(checked)


def _validated_holidays(holidays: object) -> frozenset[date]:
    if not isinstance(holidays, set | frozenset | list | tuple):
        raise ValueError("holidays must be a set of dates")
    for holiday in holidays:
        if isinstance(holiday, datetime) or not isinstance(holiday, date):
            raise ValueError(f"holidays are whole local days: give dates, got {holiday!r}")
    return frozenset(holidays)


def _minute_of_day(moment: time, name: str) -> int:
    if moment.second or moment.microsecond:
        raise ValueError(f"{name} must be on a whole minute, got {moment.isoformat()}")
    if moment.tzinfo is not None:
        raise ValueError(f"{name} is a local wall-clock time: give it without tzinfo")
    return moment.hour * 60 + moment.minute


# -- the timeline ------------------------------------------------------------------------------------------------------


def _to_us(moment: datetime, name: str) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return (moment - _EPOCH) // _ONE_US


def _instant(us: int, like: datetime) -> datetime:
    """The instant ``us`` in the time zone of ``like`` (an aware datetime)."""
    return (_EPOCH + timedelta(microseconds=us)).astimezone(like.tzinfo)


def _offset(zone: ZoneInfo, us: int) -> int:
    offset = (_EPOCH + timedelta(microseconds=us)).astimezone(zone).utcoffset()
    return 0 if offset is None else offset // _ONE_US


def _stretches(zone: ZoneInfo, begin: int, end: int | None) -> Iterator[tuple[int, int, int]]:
    """Consecutive (begin, end, UTC offset) stretches of constant offset covering [begin, end), or on forever."""
    offset = _offset(zone, begin)
    while end is None or begin < end:
        probe = begin + _PROBE if end is None else min(begin + _PROBE, end)
        probe_offset = _offset(zone, probe)
        if probe_offset == offset:
            yield begin, probe, offset
            begin = probe
            continue
        # One change in (begin, probe]: bisect to the microsecond it takes effect.
        low, high = begin, probe
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if _offset(zone, middle) == offset else (low, middle)
        yield begin, high, offset
        begin, offset = high, _offset(zone, high)


def _spans(plan: _Plan, begin: int, end: int | None) -> Iterator[tuple[int, int]]:
    """Business time within [begin, end) (or from begin on) as ordered, disjoint (begin, end) spans."""
    for low, high, offset in _stretches(plan.zone, begin, end):
        wall_low, wall_high = low + offset, high + offset
        day = wall_low // _DAY
        while day * _DAY < wall_high:
            base = day * _DAY
            for work_begin, work_end in plan.working(day):
                span_begin, span_end = max(base + work_begin, wall_low), min(base + work_end, wall_high)
                if span_begin < span_end:
                    yield span_begin - offset, span_end - offset
            day += 1


def _measure(plan: _Plan, begin: int, end: int) -> int:
    if end <= begin:
        return 0
    if plan.always:
        return end - begin
    return sum(span_end - span_begin for span_begin, span_end in _spans(plan, begin, end))


def _advance(plan: _Plan, begin: int, amount: int) -> int:
    if amount <= 0:
        return begin
    if plan.always and begin + amount <= _LAST:
        return begin + amount
    try:
        for span_begin, span_end in _spans(plan, begin, None):
            if span_end - span_begin >= amount:
                return span_begin + amount
            amount -= span_end - span_begin
    except OverflowError:
        pass
    raise ValueError("the business time runs past the last representable date")


# -- business time -----------------------------------------------------------------------------------------------------


def add_business_time(calendar: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The first instant by which ``duration`` of business time has passed since ``start``.

    In ``start``'s time zone. A zero duration returns ``start`` unchanged, even outside business hours; otherwise
    the result is always business time or the end of a working interval (Friday 17:00 + 1 h is Friday 18:00, not
    Monday 08:00). Negative durations raise ValueError.
    """
    if duration < timedelta(0):
        raise ValueError(f"duration must not be negative, got {duration}")
    begin = _to_us(start, "start")
    if not duration:
        return start
    return _instant(_advance(calendar._plan, begin, duration // _ONE_US), start)


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """Business time in [start, end); zero when ``end`` is not after ``start``."""
    begin, finish = _to_us(start, "start"), _to_us(end, "end")
    return timedelta(microseconds=_measure(calendar._plan, begin, finish))


def is_business_time(calendar: Calendar, at: datetime) -> bool:
    """Whether the local clock at ``at`` reads a working minute of a working day."""
    moment = _to_us(at, "at")
    plan = calendar._plan
    wall = moment + _offset(plan.zone, moment)
    day = wall // _DAY
    into_day = wall - day * _DAY
    return any(begin <= into_day < end for begin, end in plan.working(day))


def next_business_start(calendar: Calendar, at: datetime) -> datetime:
    """``at`` itself when it is business time, else the instant business time next begins (in ``at``'s zone)."""
    moment = _to_us(at, "at")
    try:
        for span_begin, _ in _spans(calendar._plan, moment, None):
            return at if span_begin == moment else _instant(span_begin, at)
    except OverflowError:
        pass
    raise ValueError("no business time before the last representable date")


# -- SLA clocks --------------------------------------------------------------------------------------------------------


class ClockState(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"


@dataclass(frozen=True)
class ClockReading:
    """A clock at one moment. ``remaining`` is target - elapsed: negative when overdue, frozen while paused.
    ``due`` is None while paused (unless the clock breached before the pause began)."""

    state: ClockState
    due: datetime | None
    remaining: timedelta
    elapsed: timedelta


_PauseSpans = list[tuple[int, int | None]]


def _pause_spans(pauses: Iterable[Pause], begin: int, until: int | None) -> _PauseSpans:
    """Pauses as ordered, disjoint (begin, end) spans, clipped to the clock's life: from ``begin`` and, when
    ``until`` is given, up to it (a pause still running at ``until`` gets end None)."""
    spans: _PauseSpans = []
    for index, (paused, resumed) in enumerate(pauses):
        pause_begin = _to_us(paused, f"pauses[{index}] start")
        pause_end = None if resumed is None else _to_us(resumed, f"pauses[{index}] end")
        if pause_end is not None and pause_end < pause_begin:
            raise ValueError(f"pauses[{index}] ends before it starts")
        if until is not None:
            if pause_begin > until:
                continue
            if pause_end is not None and pause_end > until:
                pause_end = None
        if pause_end is not None and pause_end <= begin:
            continue
        spans.append((max(pause_begin, begin), pause_end))
    spans.sort(key=lambda span: span[0])
    merged: _PauseSpans = []
    for pause_begin, pause_end in spans:
        if merged and (merged[-1][1] is None or pause_begin <= merged[-1][1]):
            last_begin, last_end = merged[-1]
            merged[-1] = (last_begin, None if last_end is None or pause_end is None else max(last_end, pause_end))
        else:
            merged.append((pause_begin, pause_end))
    return merged


def _due(plan: _Plan, begin: int, target: int, pauses: _PauseSpans) -> int | None:
    cursor, remaining = begin, target
    for pause_begin, pause_end in pauses:
        available = _measure(plan, cursor, pause_begin)
        if available >= remaining:
            return _advance(plan, cursor, remaining)
        remaining -= available
        if pause_end is None:
            return None
        cursor = max(cursor, pause_end)
    return _advance(plan, cursor, remaining)


def _elapsed(plan: _Plan, begin: int, pauses: _PauseSpans, until: int) -> int:
    total = _measure(plan, begin, until)
    for pause_begin, pause_end in pauses:
        total -= _measure(plan, pause_begin, until if pause_end is None else min(pause_end, until))
    return total


def _target_us(target: timedelta) -> int:
    if target < timedelta(0):
        raise ValueError(f"target must not be negative, got {target}")
    return target // _ONE_US


def clock_due(calendar: Calendar, start: datetime, target: timedelta, pauses: Iterable[Pause] = ()) -> datetime | None:
    """When a clock started at ``start`` reaches ``target`` of business time outside ``pauses`` (in ``start``'s zone).

    None while a pause is running, unless the target was already reached before that pause began: then the due time
    is that earlier instant.
    """
    begin = _to_us(start, "start")
    target_us = _target_us(target)
    due = _due(calendar._plan, begin, target_us, _pause_spans(pauses, begin, None))
    return None if due is None else _instant(due, start)


def clock_elapsed(calendar: Calendar, start: datetime, pauses: Iterable[Pause], now: datetime) -> timedelta:
    """Business time between ``start`` and ``now`` outside ``pauses``."""
    begin, until = _to_us(start, "start"), _to_us(now, "now")
    return timedelta(microseconds=_elapsed(calendar._plan, begin, _pause_spans(pauses, begin, until), until))


def clock_evaluate(
    calendar: Calendar,
    start: datetime,
    target: timedelta,
    pauses: Iterable[Pause],
    now: datetime,
    stopped_at: datetime | None = None,
    at_risk_ratio: float = 0.8,
) -> ClockReading:
    """The clock's state at ``now`` (rules in the module docstring). A stopped clock is read at ``stopped_at``:
    a pause still running then ends there, and later pauses do not count."""
    if not 0 < at_risk_ratio <= 1:
        raise ValueError(f"at_risk_ratio must be in (0, 1], got {at_risk_ratio}")
    plan = calendar._plan
    begin, until, target_us = _to_us(start, "start"), _to_us(now, "now"), _target_us(target)
    if stopped_at is not None:
        stop = _to_us(stopped_at, "stopped_at")
        closed: _PauseSpans = [(b, stop if e is None else e) for b, e in _pause_spans(pauses, begin, stop)]
        due = _due(plan, begin, target_us, closed)
        elapsed = _elapsed(plan, begin, closed, stop)
        state = ClockState.MET if due is None or stop <= due else ClockState.BREACHED
    else:
        spans = _pause_spans(pauses, begin, until)
        due = _due(plan, begin, target_us, spans)
        elapsed = _elapsed(plan, begin, spans, until)
        if spans and spans[-1][1] is None:
            # _due only sees past the running pause when the target was reached before it began.
            state = ClockState.PAUSED if due is None else ClockState.BREACHED
        elif elapsed >= target_us:
            state = ClockState.BREACHED
        elif timedelta(microseconds=elapsed) >= target * at_risk_ratio:
            state = ClockState.AT_RISK
        else:
            state = ClockState.OK
    return ClockReading(
        state=state,
        due=None if due is None else _instant(due, start),
        remaining=timedelta(microseconds=target_us - elapsed),
        elapsed=timedelta(microseconds=elapsed),
    )


# -- default policies --------------------------------------------------------------------------------------------------


class Tier(StrEnum):
    """Service tiers; the values are those of ``tenancy.models.Tier``."""

    CORE_PLUS = "CORE_PLUS"
    PREMIUM = "PREMIUM"
    ENTERPRISE = "ENTERPRISE"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


@dataclass(frozen=True)
class Target:
    """SLA targets of one priority. ``always_on`` targets run on a 24x7 calendar, the rest on business hours."""

    first_response: timedelta
    resolution: timedelta
    always_on: bool = False


def _business(first_response_hours: float, resolution_hours: float) -> Target:
    return Target(timedelta(hours=first_response_hours), timedelta(hours=resolution_hours))


# Keyed by Tier and Priority members, which are str, so plain strings (a model field's value) look them up too.
DEFAULT_POLICIES: Mapping[str, Mapping[str, Target]] = MappingProxyType(
    {
        Tier.CORE_PLUS: MappingProxyType(
            {
                Priority.P1: _business(2, 8),
                Priority.P2: _business(4, 16),
                Priority.P3: _business(8, 40),
                Priority.P4: _business(16, 80),
            }
        ),
        Tier.PREMIUM: MappingProxyType(
            {
                Priority.P1: _business(1, 4),
                Priority.P2: _business(2, 8),
                Priority.P3: _business(4, 24),
                Priority.P4: _business(8, 40),
            }
        ),
        Tier.ENTERPRISE: MappingProxyType(
            {
                Priority.P1: Target(timedelta(minutes=15), timedelta(hours=4), always_on=True),
                Priority.P2: _business(1, 8),
                Priority.P3: _business(4, 16),
                Priority.P4: _business(8, 40),
            }
        ),
    }
)

# Relative weight of a ticket by priority (workload and reporting). Decimal, like every other non-integer quantity
# here, so sums are exact.
PRIORITY_WEIGHTS: Mapping[str, Decimal] = MappingProxyType(
    {Priority.P1: Decimal(4), Priority.P2: Decimal(2), Priority.P3: Decimal(1), Priority.P4: Decimal("0.5")}
)


def raise_priority(priority: str) -> Priority:
    """One step more urgent: P4 -> P3 -> P2 -> P1; P1 stays P1. Unknown priorities raise ValueError."""
    order = list(Priority)
    return order[max(order.index(Priority(priority)) - 1, 0)]


def calendar_for(target: Target, business_hours: Calendar) -> Calendar:
    """The calendar a target's clocks run on: 24x7 in the same zone for ``always_on`` targets, else business hours."""
    return Calendar.always(business_hours.timezone) if target.always_on else business_hours
