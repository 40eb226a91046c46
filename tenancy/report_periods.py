"""When a scheduled report is sent, and which period it covers. Pure: plain values in, plain values out.

A report goes out at 07:00 in the organization's zone: ``daily`` every day, covering the day before; ``weekly`` on
Mondays, covering the week before (Monday to Sunday); ``monthly`` on the 1st, covering the month before. Periods are
local calendar days, so across a daylight-saving change a day lasts 23 or 25 hours and a sending time stays at 07:00
on the wall clock (its UTC instant moves by an hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SEND_AT = time(7, 0)
DAILY = "daily"
WEEKLY = "weekly"
MONTHLY = "monthly"
FREQUENCIES = (DAILY, WEEKLY, MONTHLY)


def _check(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise ValueError(f"unknown frequency {frequency!r}")


def _sending(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, SEND_AT, tzinfo=zone)


def _month_after(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def _first_sending_day_from(frequency: str, day: date) -> date:
    """The first day on or after ``day`` on which the report is sent."""
    if frequency == WEEKLY:
        return day + timedelta(days=(7 - day.weekday()) % 7)
    if frequency == MONTHLY:
        return day if day.day == 1 else _month_after(day)
    return day


def _last_sending_day_until(frequency: str, day: date) -> date:
    """The last day on or before ``day`` on which the report is sent."""
    if frequency == WEEKLY:
        return day - timedelta(days=day.weekday())
    if frequency == MONTHLY:
        return day.replace(day=1)
    return day


def next_run(frequency: str, after: datetime, zone: ZoneInfo) -> datetime:
    """The first sending strictly after ``after`` (aware), in UTC."""
    _check(frequency)
    day = _first_sending_day_from(frequency, after.astimezone(zone).date())
    if _sending(day, zone) <= after:
        day = _first_sending_day_from(frequency, day + timedelta(days=1))
    return _sending(day, zone).astimezone(UTC)


def last_run(frequency: str, at: datetime, zone: ZoneInfo) -> datetime:
    """The latest sending at or before ``at`` (aware), in UTC."""
    _check(frequency)
    day = _last_sending_day_until(frequency, at.astimezone(zone).date())
    if _sending(day, zone) > at:
        day = _last_sending_day_until(frequency, day - timedelta(days=1))
    return _sending(day, zone).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included; ``start`` and ``end`` (exclusive) are their midnights in
    the zone, as UTC instants (so that ``end - start`` is the real length: 23 hours on the day clocks go forward)."""

    first: date
    last: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=self.zone).astimezone(UTC)


def period_of(frequency: str, sending: datetime, zone: ZoneInfo) -> Period:
    """The period the sending at ``sending`` covers: the local day, week or month that ended before its day."""
    _check(frequency)
    day = sending.astimezone(zone).date()
    if frequency == WEEKLY:
        return Period(first=day - timedelta(days=7), last=day - timedelta(days=1), zone=zone)
    if frequency == MONTHLY:
        last = day.replace(day=1) - timedelta(days=1)
        return Period(first=last.replace(day=1), last=last, zone=zone)
    return Period(first=day - timedelta(days=1), last=day - timedelta(days=1), zone=zone)


def period_label(frequency: str, period: Period) -> str:
    """``14 September 2025``, ``8 September 2025 to 14 September 2025`` or ``September 2025``."""

    def day(value: date) -> str:
        return f"{value.day} {value:%B %Y}"

    if frequency == MONTHLY:
        return f"{period.first:%B %Y}"
    if period.first == period.last:
        return day(period.first)
    return f"{day(period.first)} to {day(period.last)}"
