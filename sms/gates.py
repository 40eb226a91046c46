"""The pure rules of the SMS send pipeline. Standard library only: plain values in, plain values out.

The pipeline
------------
Before a campaign message is sent, the caller measures everything about the job into a :class:`Check` and asks
:func:`decide`. The gates run in this order (:data:`ORDER`) and the first that fails decides the :class:`Verdict`:

1. ``kill_switch``: the organization's kill switch is on, or the campaign is paused. WAIT, with no time: the job is
   picked up again when someone resumes.
2. ``budget_cap``: this message's cost would take the organization past its daily or monthly SMS budget. WAIT until
   the budget renews: the next local midnight (daily cap) or 00:00 on the 1st of next month (monthly cap), in the
   organization's zone; the later of the two when both are exceeded. Reaching a cap exactly is allowed
   (``spent + cost == cap`` sends); only going past it waits. A cap of ``None`` is no cap.
3. ``dnc``, then ``no_consent``: the contact is on the do-not-contact list, else there is no consent on record.
   SKIP, which is final. DNC is checked first because it is the stronger (and audited) reason.
4. ``suppression``: the contact received a campaign message from this organization strictly less than
   ``suppression_days`` (default 90) ago. SKIP. Days are elapsed time (``N * 24`` hours), not calendar days, so a
   message exactly N days ago no longer suppresses. ``suppression_days <= 0`` turns suppression off.
5. ``quiet_hours``: the contact's local time (the organization's zone when the contact has none) is outside the
   sending window ``[quiet_start, quiet_end)``, 09:00 to 21:00 by default. DEFER to the next opening of the window:
   today's 09:00 when it is still early, otherwise tomorrow's.
6. ``rate_limit``: the organization's messages-per-minute or the number's messages-per-second would be exceeded.
   DEFER by the wait the caller computed (``rate_wait``); a wait of zero or less means there is room.
7. ``warmup``: every number of the campaign has reached today's warm-up cap. DEFER to the next local midnight in the
   organization's zone, when the caps renew.

Money and compliance gates come before timing gates on purpose: a job that must be skipped is skipped now rather than
deferred to 09:00 and skipped then, and a paused or over-budget organization sends nothing at all.

Time
----
Every datetime in and out is timezone-aware; everything returned is in UTC (``datetime.UTC``). Local rules ask
``zoneinfo`` what the wall clock reads at an instant, so they hold across DST changes: 09:00 in Sydney is 22:00 UTC
the day before in summer and 23:00 UTC in winter. Durations (suppression, rate waits) are measured in UTC, never on
the wall clock. A local time that the clock skips (spring forward) resolves the way ``zoneinfo`` resolves it with
``fold=0``: when the gap begins exactly at that time (changes happen on the hour, e.g. at 00:00 in Santiago) that is
the instant of the change; a time the clock repeats (fall back) resolves to its first occurrence. A naive datetime is
refused with ValueError; an unknown zone name raises ``zoneinfo.ZoneInfoNotFoundError`` (a KeyError).

Warm-up
-------
A new number sends at most ``warmup_cap(sending_day(start, today))`` messages a day: :data:`WARMUP_CURVE` gives the
caps of day 1, 2, 3 and from day 4 on the last value holds. Day 1 is the warm-up start date; before it the cap is 0.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

__all__ = [
    "ORDER",
    "WARMUP_CURVE",
    "Action",
    "Check",
    "Gate",
    "Verdict",
    "decide",
    "next_local_day",
    "next_local_month",
    "over_budget",
    "parse_curve",
    "quiet_until",
    "sending_day",
    "warmup_cap",
]


class Gate(StrEnum):
    KILL_SWITCH = "kill_switch"
    BUDGET_CAP = "budget_cap"
    DNC = "dnc"
    NO_CONSENT = "no_consent"
    SUPPRESSION = "suppression"
    QUIET_HOURS = "quiet_hours"
    RATE_LIMIT = "rate_limit"
    WARMUP = "warmup"


ORDER: tuple[Gate, ...] = (
    Gate.KILL_SWITCH,
    Gate.BUDGET_CAP,
    Gate.DNC,
    Gate.NO_CONSENT,
    Gate.SUPPRESSION,
    Gate.QUIET_HOURS,
    Gate.RATE_LIMIT,
    Gate.WARMUP,
)


class Action(StrEnum):
    SEND = "send"
    WAIT = "wait"  # held until something changes (resume) or until the budget renews
    DEFER = "defer"  # try again at ``until``
    SKIP = "skip"  # final: this contact does not get this message


@dataclass(frozen=True)
class Verdict:
    action: Action
    gate: Gate | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Check:
    """Everything the caller measured for one send job, as plain values."""

    now: datetime
    organization_zone: str
    contact_zone: str | None
    kill_switch: bool
    paused: bool
    cost: Decimal
    spent_today: Decimal
    spent_this_month: Decimal
    daily_cap: Decimal | None
    monthly_cap: Decimal | None
    on_dnc: bool
    has_consent: bool
    last_campaign_message_at: datetime | None
    suppression_days: int = 90
    rate_wait: timedelta | None = None
    warmup_full: bool = False
    quiet_start: time = time(9)
    quiet_end: time = time(21)


def decide(check: Check) -> Verdict:
    """Apply the gates in :data:`ORDER`; the first that fails decides. ``Verdict(Action.SEND)`` when none does."""
    now = _utc(check.now, "now")

    if check.kill_switch or check.paused:
        return Verdict(Action.WAIT, Gate.KILL_SWITCH)

    daily, monthly = over_budget(
        check.cost, check.spent_today, check.spent_this_month, check.daily_cap, check.monthly_cap
    )
    if daily or monthly:
        # The monthly renewal is never earlier than the daily one, but take the later explicitly: both must renew.
        renewals: list[datetime] = []
        if daily:
            renewals.append(next_local_day(now, check.organization_zone))
        if monthly:
            renewals.append(next_local_month(now, check.organization_zone))
        return Verdict(Action.WAIT, Gate.BUDGET_CAP, max(renewals))

    if check.on_dnc:
        return Verdict(Action.SKIP, Gate.DNC)
    if not check.has_consent:
        return Verdict(Action.SKIP, Gate.NO_CONSENT)

    if _suppressed(now, check.last_campaign_message_at, check.suppression_days):
        return Verdict(Action.SKIP, Gate.SUPPRESSION)

    # An empty zone on the contact means "unknown", like None.
    zone = check.contact_zone or check.organization_zone
    opens = quiet_until(now, zone, check.quiet_start, check.quiet_end)
    if opens is not None:
        return Verdict(Action.DEFER, Gate.QUIET_HOURS, opens)

    if check.rate_wait is not None and check.rate_wait > timedelta(0):
        return Verdict(Action.DEFER, Gate.RATE_LIMIT, now + check.rate_wait)

    if check.warmup_full:
        # Warm-up caps count the organization's sending day, whatever the contact's zone.
        return Verdict(Action.DEFER, Gate.WARMUP, next_local_day(now, check.organization_zone))

    return Verdict(Action.SEND)


def over_budget(
    cost: Decimal,
    spent_today: Decimal,
    spent_this_month: Decimal,
    daily_cap: Decimal | None,
    monthly_cap: Decimal | None,
) -> tuple[bool, bool]:
    """(daily, monthly): whether sending ``cost`` more would go past each cap. Reaching a cap exactly is allowed."""
    daily = daily_cap is not None and spent_today + cost > daily_cap
    monthly = monthly_cap is not None and spent_this_month + cost > monthly_cap
    return daily, monthly


def quiet_until(now: datetime, zone: str, start: time = time(9), end: time = time(21)) -> datetime | None:
    """When the sending window ``[start, end)`` next opens in ``zone``, in UTC; ``None`` when ``now`` is inside it.

    The window must not wrap midnight (``start < end``); a ValueError says so otherwise.
    """
    now = _utc(now, "now")
    if not start < end:
        raise ValueError(f"sending window must start before it ends, got {start:%H:%M} to {end:%H:%M}")
    tz = ZoneInfo(zone)

    def inside(instant: datetime) -> bool:
        return start <= instant.astimezone(tz).time() < end

    if inside(now):
        return None
    # The first instant after now at which the local clock reads `start`. Trying both folds over three local days
    # covers a start time repeated or skipped by a DST change, and a whole skipped day (Pacific/Apia, 2011-12-30).
    today = now.astimezone(tz).date()
    for offset in range(3):
        for fold in (0, 1):
            candidate = datetime.combine(today + timedelta(days=offset), start, tzinfo=tz).replace(fold=fold)
            candidate = candidate.astimezone(UTC)
            if candidate > now and inside(candidate):
                return candidate
    raise AssertionError(f"no {start:%H:%M} in {zone} within three days of {now.isoformat()}")  # pragma: no cover


def next_local_day(now: datetime, zone: str) -> datetime:
    """The next local midnight in ``zone`` after ``now`` (when a new local day begins), in UTC."""
    now = _utc(now, "now")
    tz = ZoneInfo(zone)
    tomorrow = now.astimezone(tz).date() + timedelta(days=1)
    return _local_midnight(tomorrow, tz)


def next_local_month(now: datetime, zone: str) -> datetime:
    """00:00 on the 1st of the next local month in ``zone``, in UTC."""
    now = _utc(now, "now")
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first = date(today.year + 1, 1, 1) if today.month == 12 else date(today.year, today.month + 1, 1)
    return _local_midnight(first, tz)


WARMUP_CURVE: tuple[int, ...] = (50, 100, 200, 300)


def sending_day(warmup_start: date, today: date) -> int:
    """Which day of its warm-up a number is on: 1 on the start date, 2 the day after; 0 or less before it starts."""
    return (today - warmup_start).days + 1


def warmup_cap(day: int, curve: Sequence[int] = WARMUP_CURVE) -> int:
    """Messages a number may send on warm-up ``day``: ``curve[day - 1]``, the last value once past the curve.

    Before the warm-up starts (``day < 1``) the cap is 0: a number does not send before its start date.
    """
    if not curve:
        raise ValueError("warm-up curve is empty")
    if day < 1:
        return 0
    return curve[min(day, len(curve)) - 1]


_STEP = re.compile(r"[0-9]+")


def parse_curve(text: str) -> tuple[int, ...]:
    """Read a warm-up curve such as ``"50/100/200/300"`` or ``"50,100,200,300"``.

    Steps are whole numbers of zero or more, at least one of them, separated by ``/`` or ``,`` (spaces around them
    are fine). They need not increase. Bad input raises a ValueError that names the step and the problem.
    """
    if not text.strip():
        raise ValueError("warm-up curve is empty: give daily caps such as 50/100/200/300")
    steps: list[int] = []
    for position, raw in enumerate(re.split(r"[/,]", text), start=1):
        step = raw.strip()
        if not step:
            raise ValueError(f"warm-up curve step {position} is empty")
        if step.startswith("-") and _STEP.fullmatch(step[1:]):
            raise ValueError(f"warm-up curve step {position} is negative: {step}")
        if not _STEP.fullmatch(step):
            raise ValueError(f"warm-up curve step {position} is not a whole number: {step!r}")
        steps.append(int(step))
    return tuple(steps)


def _utc(value: datetime, name: str) -> datetime:
    # A naive datetime would be read in the server's zone by astimezone(): refuse it rather than guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    # Python subtracts, adds and compares two datetimes that share a tzinfo by their wall clocks, ignoring DST.
    # Working in UTC keeps every duration and comparison in real time.
    return value.astimezone(UTC)


def _suppressed(now: datetime, last: datetime | None, days: int) -> bool:
    if last is None or days <= 0:
        return False
    return now - _utc(last, "last_campaign_message_at") < timedelta(days=days)


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    # fold=0: when midnight is skipped the day begins at the change itself; when it is repeated, at its first reading.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
