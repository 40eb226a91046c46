"""Each customer's MRR over the past year, for the metrics of the revenue report (``billing.reports``), and the days
the reports count in.

Each organization is a customer. Its MRR on a day is the monthly equivalent (``monthly_recurring``) of the contracts
running that day plus the monthly price of the subscriptions paying that day. A contract runs from its start to its
end, an active auto-renewing one without end; one ended or suspended without an end date up to its last change. A
subscription pays from its start (the end of its trial) until it was canceled (or paused: its last change); a
past-due one still counts.

A contract's price on a past day is what Keel invoiced for the period holding that day: the recurring lines of its
invoice for that full period, tax excluded (void invoices left out). So a price raised in June counts at the old price
before June and the new one after, as it was billed. A change made during a period counts from the first period
invoiced at the new price (the days between are prorated on an invoice, which is not a period's price). A day in no
invoiced full period (the contract's first, partial period, or before Keel billed it) takes the price of the next
period invoiced; today, and days after the last invoiced period, take today's price of its lines, as the forecast
does. A Stripe subscription counts at its monthly price of today.

Days are each organization's own, in its time zone, as invoicing reads them.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import QuerySet, Sum
from django.utils import timezone

from billing.metrics import HISTORY_MONTH_ENDS, monthly_recurring
from billing.models import (
    Contract,
    ContractStatus,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    Subscription,
    SubscriptionStatus,
)
from billing.periods import Cycle
from billing.proration import quantize
from billing.services.planning import renews
from tenancy.models import Organization

_DAY = timedelta(days=1)


# -- days --------------------------------------------------------------------------------------------------------------


def local_today(zone: str, now: datetime) -> date:
    """Today in the time zone ``zone`` (an organization's), as invoicing reads it."""
    return timezone.localdate(now, ZoneInfo(zone))


def local_day(moment: datetime, zone: str) -> date:
    return timezone.localdate(moment, ZoneInfo(zone))


def add_months(first: date, months: int) -> date:
    """The first day of the month ``months`` after (or before) the month beginning on ``first``."""
    year, month = divmod(first.year * 12 + first.month - 1 + months, 12)
    return date(year, month + 1, 1)


def history_days(today: date) -> list[date]:
    """The 13 days ``metrics`` reads each customer's MRR on, oldest first: the last day of each of the 12 months
    before today's month, then today."""
    first = today.replace(day=1)
    return [add_months(first, offset) - _DAY for offset in range(1 - (HISTORY_MONTH_ENDS - 1), 1)] + [today]


def zero(currency: str) -> Decimal:
    return quantize(Decimal(0), currency)


# -- what ran when -----------------------------------------------------------------------------------------------------


def _contract_span(contract: Contract) -> tuple[date, date | None]:
    """[first day, end) of the days the contract is recurring revenue (module docstring); end None: still running."""
    start, end = contract.start_date, contract.end_date
    if contract.status == ContractStatus.ACTIVE:
        return start, None if renews(contract) else end
    if contract.status == ContractStatus.ENDED and end is not None:
        return start, end
    stopped = local_day(contract.updated_at, contract.organization.timezone)
    return start, stopped if end is None else min(end, stopped)


def _subscription_span(subscription: Subscription) -> tuple[date, date | None]:
    zone = subscription.organization.timezone
    start = local_day(max(subscription.created_at, subscription.trial_end or subscription.created_at), zone)
    if subscription.status == SubscriptionStatus.CANCELED:
        return start, local_day(subscription.canceled_at or subscription.updated_at, zone)
    if subscription.status == SubscriptionStatus.PAUSED:
        return start, local_day(subscription.updated_at, zone)
    return start, None


def _runs_on(span: tuple[date, date | None], day: date) -> bool:
    start, end = span
    return start <= day and (end is None or day < end)


# -- what was invoiced -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoicedPeriods:
    """A contract's full periods that Keel invoiced, oldest first: their first days, their ends (exclusive) and the
    recurring charges invoiced for each."""

    starts: list[date]
    ends: list[date]
    prices: list[Decimal]

    def price_on(self, day: date) -> Decimal | None:
        """The price invoiced for the period holding ``day``; for a day in no invoiced period, the next invoiced
        period's; None after the last one."""
        index = bisect.bisect_right(self.starts, day) - 1
        if index >= 0 and day < self.ends[index]:
            return self.prices[index]
        return self.prices[index + 1] if index + 1 < len(self.prices) else None


def invoiced_periods(
    organizations: QuerySet[Organization], contracts: Sequence[Contract], since: date
) -> dict[uuid.UUID, InvoicedPeriods]:
    """Per contract, the full periods ending after ``since`` that Keel invoiced (not void), with the sum of their
    recurring lines. One query."""
    rows = (
        InvoiceLine.objects.filter(
            organization__in=organizations,
            invoice__contract__in=[contract.pk for contract in contracts],
            kind=LineKind.RECURRING,
            period_start__isnull=False,
            period_end__gt=since,
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .values_list("invoice__contract", "period_start", "period_end")
        .annotate(price=Sum("amount"))
        .order_by("invoice__contract", "period_start", "period_end")
    )
    found: dict[uuid.UUID, InvoicedPeriods] = {}
    for contract_id, start, end, price in rows:
        periods = found.setdefault(contract_id, InvoicedPeriods([], [], []))
        if periods.starts and periods.starts[-1] == start:  # two invoices for one period: the later one stands
            periods.ends[-1], periods.prices[-1] = end, price
            continue
        periods.starts.append(start)
        periods.ends.append(end)
        periods.prices.append(price)
    return found


# -- MRR history -------------------------------------------------------------------------------------------------------


def mrr_history(
    contracts: Iterable[Contract],
    subscriptions: Iterable[Subscription],
    now: datetime,
    prices: Mapping[uuid.UUID, Decimal],
    invoiced: Mapping[uuid.UUID, InvoicedPeriods],
) -> dict[str, dict[str, list[Decimal]]]:
    """Each customer's (organization id's) MRR on the 13 ``history_days`` of its own today, per currency: what
    ``metrics`` reads. Contracts with their organization loaded, ``prices`` their recurring price of today and
    ``invoiced`` their invoiced periods (``invoiced_periods``); drafts are never revenue."""
    history: dict[str, dict[str, list[Decimal]]] = defaultdict(dict)
    days_of: dict[str, list[date]] = {}

    def row_of(organization: Organization, currency: str) -> tuple[list[Decimal], list[date]]:
        zone = organization.timezone
        days = days_of.setdefault(zone, history_days(local_today(zone, now)))
        return history[currency].setdefault(str(organization.pk), [zero(currency)] * HISTORY_MONTH_ENDS), days

    for contract in contracts:
        if contract.status == ContractStatus.DRAFT:
            continue
        currency = contract.organization.currency
        row, days = row_of(contract.organization, currency)
        span, cycle, periods = _contract_span(contract), Cycle(contract.cycle), invoiced.get(contract.pk)
        monthly = monthly_recurring(cycle, prices[contract.pk], currency)
        for index, day in enumerate(days):
            if not _runs_on(span, day):
                continue
            # Today (the last day) at today's price, as the forecast counts it.
            price = periods.price_on(day) if periods is not None and index < len(days) - 1 else None
            row[index] += monthly if price is None else monthly_recurring(cycle, price, currency)
    for subscription in subscriptions:
        currency = subscription.currency.upper()
        row, days = row_of(subscription.organization, currency)
        span, monthly = _subscription_span(subscription), quantize(subscription.price_monthly, currency)
        for index, day in enumerate(days):
            if _runs_on(span, day):
                row[index] += monthly
    return history
