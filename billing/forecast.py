"""Revenue forecast, recurring-revenue metrics and receivables ageing. Pure: standard library only, plain values in,
plain values out. The caller (the forecast API and the staff revenue page) loads the rows and groups them by
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

Metrics
-------
:func:`metrics` reads each customer's monthly recurring revenue (MRR) at the last 13 month-ends, oldest first, and
compares each month-end with the one before (12 months of changes). A customer's MRR is rounded to the minor unit
before anything is added up. For each month:

- ``mrr``: the sum of the customers' MRR at that month-end;
- ``new_mrr``: the MRR of customers who had none at the previous month-end (a customer who returns after churning
  counts as new again);
- ``expansion_mrr`` / ``contraction_mrr``: the increase / decrease of customers who had MRR at both month-ends;
- ``churned_mrr``: the MRR, at the previous month-end, of customers who went from some MRR to none.

So each month's ``mrr`` is the previous one plus new and expansion, minus contraction and churn. Over the year:
``mrr`` is the MRR at the last month-end, ``arr`` is 12 x ``mrr``, ``churned_mrr`` the sum of the months' churned
MRR, and ``net_revenue_retention`` the MRR now of the customers who had MRR at the first month-end (12 months ago),
as a percentage of their MRR then, rounded to one decimal place ROUND_HALF_UP; None when nobody had MRR 12 months
ago. Customers who churned in between count with their MRR now (zero, or what they pay since they returned); those
who started later do not count. :func:`monthly_recurring` turns a contract's per-period amount into MRR.

Ageing
------
:func:`ageing` adds up the amounts due on open invoices by how many days past their due date they are on ``today``:
"current" (due today or later), "1-30", "31-60", "61-90" and "90+" days overdue.

Money in is a finite, non-negative ``Decimal``. Bad input raises ValueError naming the argument.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, date, datetime, timedelta
from decimal import Context, Decimal, DecimalException, Inexact, InvalidOperation, Overflow
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from math import floor
from typing import TypeVar

from billing.periods import Cycle, Schedule, boundary_after, periods
from billing.proration import minor_units, prorate, prorate_piece, quantize

__all__ = [
    "AGEING_BUCKETS",
    "HISTORY_MONTH_ENDS",
    "MAX_MONTHS",
    "USAGE_MONTHS",
    "ContractPlan",
    "Metrics",
    "MonthForecast",
    "MonthMetrics",
    "SubscriptionPlan",
    "Timing",
    "UsageHistory",
    "ageing",
    "forecast",
    "metrics",
    "monthly_recurring",
]

MAX_MONTHS = 36
"""The longest forecast horizon, in months."""

USAGE_MONTHS = 3
"""How many trailing months of usage the projection averages, at most."""

HISTORY_MONTH_ENDS = 13
"""The month-ends of MRR :func:`metrics` reads per customer: now and each of the 12 before."""

AGEING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
"""The keys of :func:`ageing`, in order."""

_T = TypeVar("_T")
_DAY = timedelta(days=1)
# Exact arithmetic: an amount too long for 60 digits fails loudly instead of being rounded somewhere it should not be.
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation, Overflow])


class Timing(StrEnum):
    ADVANCE = "ADVANCE"  # invoiced on the period's first day
    ARREARS = "ARREARS"  # invoiced on the period's end, the day after its last


# -- checks ----------------------------------------------------------------------------------------------------------


def _check_date(value: object, name: str) -> date:
    # datetime is a subclass of date, so it has to be turned away explicitly.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise ValueError(f"{name} must be a date (not a datetime), got {value!r}")
    return value


def _check_money(value: object, name: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal (money is never a float), got {value!r}")
    if not value.is_finite() or value < 0:
        raise ValueError(f"{name} must be a finite amount of at least zero, got {value}")
    return value


def _check_currency(value: object, name: str) -> str:
    try:
        minor_units(value)  # type: ignore[arg-type]  # it checks the type itself
    except ValueError:
        raise ValueError(f"{name} must be a three-letter ISO 4217 code, got {value!r}") from None
    return str(value).upper()


def _check_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def _items(value: object, name: str, kind: type[_T]) -> list[_T]:
    if isinstance(value, (str, bytes, Mapping)):
        raise ValueError(f"{name} must be a list of {kind.__name__}, got {value!r}")
    try:
        items = list(value)  # type: ignore[call-overload]  # anything iterable; a TypeError otherwise
    except TypeError:
        raise ValueError(f"{name} must be a list of {kind.__name__}, got {value!r}") from None
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            raise ValueError(f"{name}[{index}] must be a {kind.__name__}, got {item!r}")
    return items


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
        _check_id(self.id, "id")
        self.schedule  # noqa: B018 - checks cycle, anchor_day and anchor_month
        object.__setattr__(self, "cycle", Cycle(self.cycle))
        try:
            object.__setattr__(self, "timing", Timing(self.timing))
        except ValueError:
            raise ValueError(f"timing must be one of {', '.join(Timing)}, got {self.timing!r}") from None
        _check_date(self.start, "start")
        if self.end is not None and _check_date(self.end, "end") <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        _check_money(self.recurring, "recurring")
        if self.next_period_start is not None and _check_date(self.next_period_start, "next_period_start") < self.start:
            raise ValueError(f"next_period_start ({self.next_period_start}) must not be before start ({self.start})")
        _check_bool(self.auto_renew, "auto_renew")
        term = self.renewal_term_months
        if term is not None and (isinstance(term, bool) or not isinstance(term, int) or not 1 <= term <= 1200):
            raise ValueError(f"renewal_term_months must be a whole number of months from 1 to 1200, got {term!r}")
        if self.auto_renew and self.end is not None and term is None:
            raise ValueError("renewal_term_months is required when a contract with an end date auto-renews")
        object.__setattr__(self, "currency", _check_currency(self.currency, "currency"))

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
        _check_id(self.id, "id")
        _check_money(self.monthly, "monthly")
        _check_date(self.next_billing, "next_billing")
        _check_bool(self.cancel_at_period_end, "cancel_at_period_end")
        object.__setattr__(self, "currency", _check_currency(self.currency, "currency"))


@dataclass(frozen=True)
class UsageHistory:
    """A contract's usage and overage revenue in each of its last full months (oldest first, at most three; none
    for a contract too new to have a full month). It is in the contract's currency."""

    contract_id: str
    monthly_amounts: tuple[Decimal, ...]

    def __post_init__(self) -> None:
        _check_id(self.contract_id, "contract_id")
        given: object = self.monthly_amounts  # typed as a tuple, but any sequence is accepted
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
            raise ValueError(f"monthly_amounts must be a sequence of Decimal, got {given!r}")
        amounts = tuple(given)
        if len(amounts) > USAGE_MONTHS:
            raise ValueError(f"monthly_amounts must hold at most the last {USAGE_MONTHS} months, got {len(amounts)}")
        for index, amount in enumerate(amounts):
            _check_money(amount, f"monthly_amounts[{index}]")
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
    _check_date(today, "today")
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be a whole number from 1 to {MAX_MONTHS}, got {months!r}")
    code = _check_currency(currency, "currency")
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
    for index, plan in enumerate(_items(value, name, kind)):
        if plan.currency != currency:
            raise ValueError(
                f"{name}[{index}] ({plan.id}) is in {plan.currency}, not {currency}: forecast one currency at a time"
            )
        if plan.id in plans:
            raise ValueError(f"{name}[{index}]: the id {plan.id!r} appears twice")
        plans[plan.id] = plan
    return plans


def _histories(value: object, contracts: Mapping[str, ContractPlan]) -> list[UsageHistory]:
    histories = _items(value, "usage", UsageHistory)
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
            total = _EXACT.add(total, amount)
    except DecimalException:
        raise ValueError("monthly_amounts have too many digits to add up exactly") from None
    return total


# -- metrics ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthMetrics:
    """The change in MRR from the month-end ``month - 1`` of the history to the month-end ``month`` (1..12; 12 is
    the latest). Definitions in the module docstring."""

    month: int
    mrr: Decimal
    new_mrr: Decimal
    expansion_mrr: Decimal
    contraction_mrr: Decimal
    churned_mrr: Decimal


@dataclass(frozen=True)
class Metrics:
    """Recurring-revenue metrics over the past 12 months (definitions in the module docstring)."""

    mrr: Decimal
    arr: Decimal
    churned_mrr: Decimal
    net_revenue_retention: Decimal | None
    by_month: list[MonthMetrics]


def monthly_recurring(cycle: Cycle, recurring: Decimal, currency: str) -> Decimal:
    """``recurring``, the price of one period of ``cycle``, as a monthly amount rounded once to ``currency``'s minor
    unit: weekly x 52 / 12, monthly as is, quarterly / 3, annual / 12."""
    try:
        cycle = Cycle(cycle)
    except ValueError:
        raise ValueError(f"cycle must be one of {', '.join(Cycle)}, got {cycle!r}") from None
    _check_money(recurring, "recurring")
    code = _check_currency(currency, "currency")
    if cycle is Cycle.WEEKLY:
        try:
            return prorate(_EXACT.multiply(recurring, 13), 1, 3, code)  # 52 / 12 = 13 / 3
        except DecimalException:
            raise ValueError(f"recurring ({recurring}) has too many digits to convert exactly") from None
    if cycle is Cycle.MONTHLY:
        return quantize(recurring, code)
    return prorate(recurring, 1, 3 if cycle is Cycle.QUARTERLY else 12, code)


def metrics(*, history: Mapping[str, Sequence[Decimal]], currency: str) -> Metrics:
    """MRR, ARR, churn and net revenue retention from each customer's MRR at the last 13 month-ends (oldest first;
    zero for the month-ends before a customer started or after it left)."""
    code = _check_currency(currency, "currency")
    if not isinstance(history, Mapping):
        raise ValueError(f"history must be a mapping of customer to MRR per month-end, got {history!r}")
    rows: list[list[Decimal]] = []
    for customer, given in history.items():
        name = f"history[{customer!r}]"
        values: object = given
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != HISTORY_MONTH_ENDS:
            raise ValueError(f"{name} must be the MRR at each of {HISTORY_MONTH_ENDS} month-ends, got {values!r}")
        rows.append([quantize(_check_money(value, f"{name}[{index}]"), code) for index, value in enumerate(values)])

    zero = quantize(Decimal(0), code)
    by_month = []
    for month in range(1, HISTORY_MONTH_ENDS):
        mrr = new = expansion = contraction = churned = zero
        for row in rows:
            before, now = row[month - 1], row[month]
            mrr += now
            if not before:
                new += now
            elif not now:
                churned += before
            elif now > before:
                expansion += now - before
            else:
                contraction += before - now
        by_month.append(MonthMetrics(month, mrr, new, expansion, contraction, churned))

    mrr = sum((row[-1] for row in rows), zero)
    base = sum((row[0] for row in rows), zero)
    retained = sum((row[-1] for row in rows if row[0]), zero)
    return Metrics(
        mrr=mrr,
        arr=mrr * 12,
        churned_mrr=sum((month.churned_mrr for month in by_month), zero),
        net_revenue_retention=_percentage(retained, base) if base else None,
        by_month=by_month,
    )


def _percentage(part: Decimal, whole: Decimal) -> Decimal:
    """``part / whole`` as a percentage rounded once, from the exact fraction, half up to one decimal place."""
    tenths = floor(Fraction(part) * 1000 / Fraction(whole) + Fraction(1, 2))  # both are at least zero
    return Decimal(tenths).scaleb(-1)


# -- ageing ----------------------------------------------------------------------------------------------------------


def ageing(*, today: date, open_invoices: Iterable[tuple[date, Decimal]], currency: str) -> dict[str, Decimal]:
    """The amounts due on ``open_invoices`` ((due date, amount due) pairs) by days overdue on ``today``: "current"
    (due today or later), "1-30", "31-60", "61-90", "90+". Every bucket is present, in that order; each amount is
    rounded to ``currency`` before it is added."""
    _check_date(today, "today")
    code = _check_currency(currency, "currency")
    buckets = dict.fromkeys(AGEING_BUCKETS, quantize(Decimal(0), code))
    for index, item in enumerate(_items(open_invoices, "open_invoices", tuple)):
        if len(item) != 2:
            raise ValueError(f"open_invoices[{index}] must be a (due date, amount due) pair, got {item!r}")
        due = _check_date(item[0], f"open_invoices[{index}] due date")
        amount = quantize(_check_money(item[1], f"open_invoices[{index}] amount due"), code)
        overdue = (today - due).days
        bucket = AGEING_BUCKETS[0 if overdue <= 0 else min(4, (overdue - 1) // 30 + 1)]
        buckets[bucket] += amount
    return buckets
