"""Revenue forecast. Pure: standard library only, plain values in, plain values out. The caller (the forecast API and
the staff revenue page) loads the rows and groups them by currency; nothing here converts between currencies.
currency; nothing here converts between currencies.

Forecast
--------
:func:`forecast` gives the revenue expected in each calendar month of a horizon of ``months`` months (1..36). The
first month is the *current* one, counted only from ``today`` on (``today`` included: an invoice due today has not
necessarily gone out yet); so ``months=12`` means the rest of this month and the eleven months after it. Revenue is
dated the day it is invoiced and lands in that day's calendar month:

- **Contracts** (:class:`ContractPlan`) follow ``billing.periods``: a period billed in ADVANCE is invoiced on its
  first day, one billed in ARREARS on its ``end`` (the first day after it). Only periods from ``next_period_start``
  on count (the earlier ones are invoiced). A period cut short by the contract's ``end`` is prorated by its days
  (``proration.prorate_piece``), exactly as the invoice generator prices it. A period whose invoice date has already
  passed but which ``next_period_start`` says is not invoiced yet (the generator is behind) is counted on ``today``,
  the earliest day it can still be invoiced, rather than dropped.
- **Renewals**: an auto-renewing contract with an ``end`` runs on for successive terms of ``renewal_term_months``
  (each renewal end is ``end`` plus a whole number of terms, the day clamped to short months) until it is past the
  horizon. The renewed contract keeps its schedule: a renewal does not cut a period in two. Within the horizon an
  auto-renewing contract is therefore billed like one without an end. A contract that is fully invoiced up to its
  end (``next_period_start`` is None) and renews carries on from its ``end``; one that does not renew is done.
- **Stripe subscriptions** (:class:`SubscriptionPlan`): one charge of ``monthly`` on ``next_billing`` and then on the
  same day of each following month (clamped to short months: a subscription billed on the 31st is charged on
  Feb 28, then Mar 31). Charges dated before ``today`` are Stripe's, already invoiced, and skipped. A subscription
  set to cancel at the end of its period is never charged again: the period ends at ``next_billing``.
- **Usage** (:class:`UsageHistory`): the average of the last one to three full months of a contract's usage and
  overage revenue, projected to every future month while the contract runs (until its ``end``, or past it when it
  auto-renews). Unlike the recurring amounts, usage is spread over calendar days (the history is per calendar
  month): a month the contract runs only part of, including the current month from ``today``, gets the average
  prorated by the days it runs out of the days of the month.

Every amount is rounded to the currency's minor unit (ROUND_HALF_UP) per invoice, charge or month of usage, and the
monthly figures are sums of those rounded amounts; ``total`` is ``contracts + subscriptions + usage``.

Metrics of the recurring revenue so far and receivables ageing are ``billing.metrics``. Money in is a finite,
non-negative ``Decimal``. Bad input raises ValueError naming the argument.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, timedelta
from decimal import Decimal, DecimalException
from enum import StrEnum
from itertools import pairwise
from typing import TypeVar

from billing.checks import EXACT, check_bool, check_currency, check_date, check_id, check_items, check_money
from billing.periods import Cycle, Schedule, boundary_after, periods
from billing.proration import prorate, prorate_piece, quantize

__all__ = [
    "MAX_MONTHS",
    "USAGE_MONTHS",
    "ContractPlan",
    "MonthForecast",
    "SubscriptionPlan",
    "Timing",
    "UsageHistory",
    "forecast",
]

MAX_MONTHS = 36
"""The longest forecast horizon, in months."""

USAGE_MONTHS = 3
"""How many trailing months of usage the projection averages, at most."""

_DAY = timedelta(days=1)


class Timing(StrEnum):
    ADVANCE = "ADVANCE"  # invoiced on the period's first day
    ARREARS = "ARREARS"  # invoiced on the period's end, the day after its last


def _shift_months(day: date, months: int, name: str) -> date:
    """``day`` moved by a whole number of months, its day of the month clamped to a short month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    if not MINYEAR <= year <= MAXYEAR:
        raise ValueError(f"{name} ({day}) is too close to the years {MINYEAR}..{MAXYEAR} to look {months} months on")
    return date(year, month, min(day.day, monthrange(year, month)[1]))


# -- plans -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContractPlan:
    """An active contract as the forecast sees it. ``recurring`` is the price of a full cycle period excluding tax;
    ``end`` is exclusive (the first day not covered); ``next_period_start`` is the first day not invoiced yet (None
    when the contract is invoiced up to its end). ``anchor_day`` and ``anchor_month`` are those of
    ``billing.periods.Schedule``."""

    id: str
    cycle: Cycle
    anchor_day: int
    anchor_month: int
    start: date
    end: date | None
    timing: Timing
    recurring: Decimal
    next_period_start: date | None
    auto_renew: bool
    renewal_term_months: int | None
    currency: str

    def __post_init__(self) -> None:
        check_id(self.id, "id")
        self.schedule  # noqa: B018 - checks cycle, anchor_day and anchor_month
        object.__setattr__(self, "cycle", Cycle(self.cycle))
        try:
            object.__setattr__(self, "timing", Timing(self.timing))
        except ValueError:
            raise ValueError(f"timing must be one of {', '.join(Timing)}, got {self.timing!r}") from None
        check_date(self.start, "start")
        if self.end is not None and check_date(self.end, "end") <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        check_money(self.recurring, "recurring")
        if self.next_period_start is not None and check_date(self.next_period_start, "next_period_start") < self.start:
            raise ValueError(f"next_period_start ({self.next_period_start}) must not be before start ({self.start})")
        check_bool(self.auto_renew, "auto_renew")
        term = self.renewal_term_months
        if term is not None and (isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= 1200):
            raise ValueError(f"renewal_term_months must be a whole number of months from 1 to 1200, got {term!r}")
        if self.auto_renew and self.end is not None and term is None:
            raise ValueError("renewal_term_months is required when a contract with an end date auto-renews")
        object.__setattr__(self, "currency", check_currency(self.currency, "currency"))

    @property
    def schedule(self) -> Schedule:
        return Schedule(self.cycle, self.anchor_day, self.anchor_month)

    def end_within(self, reach: date) -> date | None:
        """The contract's end as far as ``reach`` can see: ``end``, or for an auto-renewing contract the first
        renewal end on or after ``reach``; None when it has no end."""
        if self.end is None or not self.auto_renew or self.end >= reach:
            return self.end
        assert self.renewal_term_months is not None  # noqa: S101 - checked in __post_init__
        terms = 1
        while (renewed := _shift_months(self.end, terms * self.renewal_term_months, "end")) < reach:
            terms += 1
        return renewed


@dataclass(frozen=True)
class SubscriptionPlan:
    """A Stripe subscription charged ``monthly`` (excluding tax) on ``next_billing`` and monthly after it."""

    id: str
    monthly: Decimal
    next_billing: date
    cancel_at_period_end: bool
    currency: str

    def __post_init__(self) -> None:
        check_id(self.id, "id")
        check_money(self.monthly, "monthly")
        check_date(self.next_billing, "next_billing")
        check_bool(self.cancel_at_period_end, "cancel_at_period_end")
        object.__setattr__(self, "currency", check_currency(self.currency, "currency"))


@dataclass(frozen=True)
class UsageHistory:
    """A contract's usage and overage revenue in each of its last full months (oldest first, at most three; none
    for a contract too new to have a full month). It is in the contract's currency."""

    contract_id: str
    monthly_amounts: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        check_id(self.contract_id, "contract_id")
        given: object = self.monthly_amounts  # typed as a tuple, but any sequence is accepted
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
            raise ValueError(f"monthly_amounts must be a sequence of Decimal, got {given!r}")
        amounts = tuple(given)
        if len(amounts) > USAGE_MONTHS:
            raise ValueError(f"monthly_amounts must hold at most the last {USAGE_MONTHS} months, got {len(amounts)}")
        for index, amount in enumerate(amounts):
            check_money(amount, f"monthly_amounts[{index}]")
        object.__setattr__(self, "monthly_amounts", amounts)


@dataclass(frozen=True)
class MonthForecast:
    """The revenue expected in the calendar month beginning on ``month``."""

    month: date
    contracts: Decimal
    subscriptions: Decimal
    usage: Decimal
    total: Decimal


_Plan = TypeVar("_Plan", ContractPlan, SubscriptionPlan)


# -- forecast --------------------------------------------------------------------------------------------------------


def forecast(
    *,
    today: date,
    months: int,
    contracts: Iterable[ContractPlan],
    subscriptions: Iterable[SubscriptionPlan],
    usage: Iterable[UsageHistory],
    currency: str,
) -> list[MonthForecast]:
    """The revenue expected in ``months`` calendar months (1..36), the current one first and counted from ``today``
    on (rules in the module docstring). Every plan must be in ``currency``; each contract and subscription id may
    appear once, and usage only for a contract of ``contracts``."""
    check_date(today, "today")
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be a whole number from 1 to {MAX_MONTHS}, got {months!r}")
    code = check_currency(currency, "currency")
    contract_plans = _plans(contracts, "contracts", ContractPlan, code)
    subscription_plans = _plans(subscriptions, "subscriptions", SubscriptionPlan, code)
    histories = _histories(usage, contract_plans)

    first = today.replace(day=1)
    starts = [_shift_months(first, index, "today") for index in range(months + 1)]
    horizon_end = starts[-1]
    zero = quantize(Decimal(0), code)
    sums = {name: dict.fromkeys(starts[:-1], zero) for name in ("contracts", "subscriptions", "usage")}

    def add(part: str, day: date, amount: Decimal) -> None:
        month = day.replace(day=1)
        sums[part][month] += amount

    for plan in contract_plans.values():
        for day, amount in _contract_invoices(plan, today, horizon_end):
            add("contracts", day, amount)
    for subscription in subscription_plans.values():
        for day in _subscription_charges(subscription, today, horizon_end):
            add("subscriptions", day, quantize(subscription.monthly, code))
    for history in histories:
        plan = contract_plans[history.contract_id]
        for month, amount in _usage_months(plan, history, today, starts):
            add("usage", month, amount)

    return [
        MonthForecast(
            month=month,
            contracts=sums["contracts"][month],
            subscriptions=sums["subscriptions"][month],
            usage=sums["usage"][month],
            total=sums["contracts"][month] + sums["subscriptions"][month] + sums["usage"][month],
        )
        for month in starts[:-1]
    ]


def _plans(value: object, name: str, kind: type[_Plan], currency: str) -> dict[str, _Plan]:
    plans: dict[str, _Plan] = {}
    for index, plan in enumerate(check_items(value, name, kind)):
        if plan.currency != currency:
            raise ValueError(
                f"{name}[{index}] ({plan.id}) is in {plan.currency}, not {currency}: forecast one currency at a time"
            )
        if plan.id in plans:
            raise ValueError(f"{name}[{index}]: the id {plan.id!r} appears twice")
        plans[plan.id] = plan
    return plans


def _histories(value: object, contracts: Mapping[str, ContractPlan]) -> list[UsageHistory]:
    histories = check_items(value, "usage", UsageHistory)
    seen: set[str] = set()
    for index, history in enumerate(histories):
        if history.contract_id not in contracts:
            raise ValueError(f"usage[{index}] is for the contract {history.contract_id!r}, which is not in contracts")
        if history.contract_id in seen:
            raise ValueError(f"usage[{index}]: the contract {history.contract_id!r} has usage twice")
        seen.add(history.contract_id)
    return histories


def _contract_invoices(plan: ContractPlan, today: date, horizon_end: date) -> Iterable[tuple[date, Decimal]]:
    """(invoice date, amount) of each period of ``plan`` invoiced before ``horizon_end``; none before ``today``."""
    cursor = plan.next_period_start
    if cursor is None:
        if plan.end is None or not plan.auto_renew:
            return
        cursor = plan.end  # invoiced up to its end: the renewal carries on from there
    if cursor >= horizon_end:
        return
    schedule = plan.schedule
    # The end of the last cycle period that starts within the horizon: no period invoiced in the horizon goes past it.
    reach = boundary_after(schedule, horizon_end - _DAY)
    end = plan.end_within(reach)
    until = reach if end is None else min(end, reach)
    if until <= cursor:
        return
    for piece in periods(schedule, cursor, until):
        on = piece.period.start if plan.timing is Timing.ADVANCE else piece.period.end
        if on < horizon_end:
            yield max(on, today), prorate_piece(plan.recurring, piece.period, piece.cycle_period, plan.currency)


def _subscription_charges(plan: SubscriptionPlan, today: date, horizon_end: date) -> Iterable[date]:
    if plan.cancel_at_period_end:
        return
    # Skip the months wholly before today's month (a stale next_billing) without walking them.
    months = max(0, (today.year - plan.next_billing.year) * 12 + today.month - plan.next_billing.month - 1)
    while (day := _shift_months(plan.next_billing, months, "next_billing")) < horizon_end:
        if day >= today:
            yield day
        months += 1


def _usage_months(
    plan: ContractPlan, history: UsageHistory, today: date, starts: Sequence[date]
) -> Iterable[tuple[date, Decimal]]:
    """(first of the month, projected usage) for each month of the horizon the contract runs in."""
    count = len(history.monthly_amounts)
    if not count:
        return
    total = _exact_sum(history.monthly_amounts)
    end = plan.end_within(starts[-1])
    for month, next_month in pairwise(starts):
        begin = max(month, today, plan.start)
        finish = next_month if end is None else min(next_month, end)
        if begin < finish:
            days = (next_month - month).days
            # The average prorated by the days run, rounded once: total x run days / (month days x count).
            yield month, prorate(total, (finish - begin).days, days * count, plan.currency)


def _exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    try:
        for amount in amounts:
            total = EXACT.add(total, amount)
    except DecimalException:
        raise ValueError("monthly_amounts have too many digits to add up exactly") from None
    return total
