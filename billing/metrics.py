"""Recurring-revenue metrics and receivables ageing. Pure: standard library only, plain values in, plain values out.
The caller (the revenue API and the staff revenue page, through ``billing.reports``) loads the rows and groups them by
currency; nothing here converts between currencies.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, DecimalException
from fractions import Fraction
from math import floor

from billing.checks import EXACT, check_currency, check_date, check_items, check_money
from billing.periods import Cycle
from billing.proration import prorate, quantize

__all__ = [
    "AGEING_BUCKETS",
    "HISTORY_MONTH_ENDS",
    "Metrics",
    "MonthMetrics",
    "ageing",
    "metrics",
    "monthly_recurring",
]

HISTORY_MONTH_ENDS = 13
"""The month-ends of MRR :func:`metrics` reads per customer: now and each of the 12 before."""

AGEING_BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")
"""The keys of :func:`ageing`, in order."""


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
    check_money(recurring, "recurring")
    code = check_currency(currency, "currency")
    if cycle is Cycle.WEEKLY:
        try:
            return prorate(EXACT.multiply(recurring, 13), 1, 3, code)  # 52 / 12 = 13 / 3
        except DecimalException:
            raise ValueError(f"recurring ({recurring}) has too many digits to convert exactly") from None
    if cycle is Cycle.MONTHLY:
        return quantize(recurring, code)
    return prorate(recurring, 1, 3 if cycle is Cycle.QUARTERLY else 12, code)


def metrics(*, history: Mapping[str, Sequence[Decimal]], currency: str) -> Metrics:
    """MRR, ARR, churn and net revenue retention from each customer's MRR at the last 13 month-ends (oldest first;
    zero for the month-ends before a customer started or after it left)."""
    code = check_currency(currency, "currency")
    if not isinstance(history, Mapping):
        raise ValueError(f"history must be a mapping of customer to MRR per month-end, got {history!r}")
    rows: list[list[Decimal]] = []
    for customer, given in history.items():
        name = f"history[{customer!r}]"
        values: object = given
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != HISTORY_MONTH_ENDS:
            raise ValueError(f"{name} must be the MRR at each of {HISTORY_MONTH_ENDS} month-ends, got {values!r}")
        rows.append([quantize(check_money(value, f"{name}[{index}]"), code) for index, value in enumerate(values)])

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


def ageing(*, today: date, open_invoices: Iterable[tuple[date, Decimal]], currency: str) -> dict[str, Decimal]:
    """The amounts due on ``open_invoices`` ((due date, amount due) pairs) by days overdue on ``today``: "current"
    (due today or later), "1-30", "31-60", "61-90", "90+". Every bucket is present, in that order; each amount is
    rounded to ``currency`` before it is added."""
    check_date(today, "today")
    code = check_currency(currency, "currency")
    buckets = dict.fromkeys(AGEING_BUCKETS, quantize(Decimal(0), code))
    for index, item in enumerate(check_items(open_invoices, "open_invoices", tuple)):
        if len(item) != 2:
            raise ValueError(f"open_invoices[{index}] must be a (due date, amount due) pair, got {item!r}")
        due = check_date(item[0], f"open_invoices[{index}] due date")
        amount = quantize(check_money(item[1], f"open_invoices[{index}] amount due"), code)
        overdue = (today - due).days
        bucket = AGEING_BUCKETS[0 if overdue <= 0 else min(4, (overdue - 1) // 30 + 1)]
        buckets[bucket] += amount
    return buckets
