"""Revenue reports of billing, read from the database and worked out by the pure ``billing.forecast`` and
``billing.metrics``: the revenue expected in the months ahead, recurring-revenue metrics over the past year, and the
ageing of receivables. Read by the forecast and ageing API (``billing.api_reports``) and the staff revenue page
(``billing.staff_views``).

Every report covers the organizations it is given (a queryset the caller has already confined to what it may see),
in a fixed number of queries whatever their number and the number of contracts, subscriptions and invoices.

Currencies are never added together: a contract is in its organization's currency, a Stripe subscription and an
invoice in their own, and each report has one part per currency (also for the organizations' currencies with
nothing in them, so an organization without revenue sees zeros rather than nothing).

Days are each organization's own, in its time zone, as invoicing reads them. A forecast over organizations in
several zones starts at the month of the earliest of their todays; an organization already in the next month adds
nothing to that first month (everything it bills there is dated before its today).

What is read
------------
- **Contracts** (``ContractPlan``, ACTIVE only): the price of a full period is the sum of the recurring charges of
  its lines (``billing.rating`` without usage or hours, as invoicing prices them), on invoicing's schedule
  (``schedule_of``) and renewing as invoicing renews them (``renews``).
- **Stripe subscriptions** (``SubscriptionPlan``, ACTIVE or TRIALING): ``price_monthly``, next charged on
  ``current_period_end`` (while trialing without one, on ``trial_end``; failing both, on the day of the month it was
  created).
- **Usage** (``UsageHistory``): for each of the three calendar months before the current one that the contract ran
  in full, the month's metered usage (``UsageRecord``, per metric, months in the organization's zone) priced by the
  contract's first USAGE line of that metric as an invoice prices it, with the period's included units and tiers:
  a month's usage is scaled up to one period of the contract's cycle (x 3 for a quarter, x 12 for a year, x 3 / 13
  for a week), priced, and the charge scaled back to a month (``monthly_recurring``). The overage of blocks of hours
  (billable ticket time) is not projected.
- **MRR** (``metrics``): each organization's MRR on the last day of each of the past 12 months and today
  (``billing.mrr``): the contracts running that day at the price Keel invoiced for the period holding it (today's
  price for today and after the last invoiced period), and the subscriptions paying that day.
- **Ageing** (``ageing``): OPEN and UNCOLLECTIBLE invoices with something left to pay (``amount_due``: the total
  less payments and credit notes), by days past their due date on their organization's today.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db.models import Case, IntegerField, Prefetch, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from billing.forecast import USAGE_MONTHS, ContractPlan, MonthForecast, SubscriptionPlan, Timing, UsageHistory, forecast
from billing.metrics import AGEING_BUCKETS, Metrics, MonthMetrics, ageing, metrics, monthly_recurring
from billing.models import (
    Contract,
    ContractLine,
    ContractStatus,
    CreditNote,
    Invoice,
    InvoiceStatus,
    PricingModel,
    Subscription,
    SubscriptionStatus,
    UsageRecord,
)
from billing.mrr import add_months, history_days, invoiced_periods, local_day, local_today, mrr_history, zero
from billing.periods import Cycle
from billing.proration import quantize
from billing.rating import Kind, rate
from billing.services.invoices import amount_due
from billing.services.planning import renews, schedule_of, terms_of
from tenancy.models import Organization

__all__ = [
    "AgedInvoice",
    "CurrencyAgeing",
    "CurrencyRevenue",
    "MrrMonth",
    "RevenueReport",
    "contract_plan",
    "history_days",
    "local_today",
    "mrr_history",
    "receivables_ageing",
    "recurring_price",
    "revenue_report",
    "subscription_plan",
    "usage_histories",
]

FORECAST_SUBSCRIPTIONS = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
AGED_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)
# A month's usage as a share of one period of each cycle: a week is 12 / 52 = 3 / 13 of a month.
_PERIOD_MONTHS = {Cycle.WEEKLY: (3, 13), Cycle.MONTHLY: (1, 1), Cycle.QUARTERLY: (3, 1), Cycle.ANNUAL: (12, 1)}
_QUANTITY = Decimal("0.0001")  # usage quantities are stored to four places
# A row that stopped (by its last change) more than this before the oldest day the metrics read cannot count on it:
# a local day starts at most 14 hours before its UTC day.
_WINDOW_MARGIN = timedelta(days=2)


# -- days --------------------------------------------------------------------------------------------------------------


def _months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


@dataclass(frozen=True)
class _Scope:
    """The organizations' currencies, the earliest of their todays, and the earliest today of each currency's."""

    currencies: frozenset[str]
    today: date
    todays: Mapping[str, date]

    @classmethod
    def read(cls, organizations: QuerySet[Organization], now: datetime) -> _Scope:
        pairs = set(organizations.order_by().values_list("timezone", "currency").distinct())
        todays: dict[str, date] = {}
        for zone, currency in pairs:
            today = local_today(zone, now)
            todays[currency.upper()] = min(today, todays.get(currency.upper(), today))
        today = min(todays.values(), default=now.astimezone(UTC).date())
        return cls(frozenset(todays), today, todays)

    def today_of(self, currency: str) -> date:
        return self.todays.get(currency, self.today)


# -- reading the rows --------------------------------------------------------------------------------------------------


def _contracts(organizations: QuerySet[Organization], since: date) -> list[Contract]:
    """Contracts that may have run on or after ``since``, with their organization and lines (two queries)."""
    stopped_since = datetime.combine(since, time(), tzinfo=UTC) - _WINDOW_MARGIN
    running = (
        Q(status=ContractStatus.ACTIVE)
        | Q(end_date__gt=since)
        | Q(end_date__isnull=True, updated_at__gte=stopped_since)
        | Q(status=ContractStatus.SUSPENDED, updated_at__gte=stopped_since)
    )
    return list(
        Contract.objects.for_orgs(organizations)
        .exclude(status=ContractStatus.DRAFT)
        .filter(running)
        .select_related("organization")
        .defer("organization__brand_logo")
        .prefetch_related(Prefetch("lines", queryset=ContractLine.objects.order_by("position", "id")))
        .order_by("start_date", "id")
    )


def _subscriptions(organizations: QuerySet[Organization], since: date) -> list[Subscription]:
    """Subscriptions that may have paid on or after ``since``, with their organization (one query)."""
    stopped_since = datetime.combine(since, time(), tzinfo=UTC) - _WINDOW_MARGIN
    return list(
        Subscription.objects.for_orgs(organizations)
        .filter(
            ~Q(status=SubscriptionStatus.CANCELED)
            | Q(canceled_at__gte=stopped_since)
            | Q(updated_at__gte=stopped_since)
        )
        .select_related("organization")
        .defer("organization__brand_logo", "configuration")
        .order_by("created_at", "id")
    )


# -- plans -------------------------------------------------------------------------------------------------------------


def recurring_price(contract: Contract) -> Decimal:
    """The price of one full period of the contract excluding tax: the recurring charges of its lines (prefetched)."""
    currency = contract.organization.currency
    charges = (charge for line in contract.lines.all() for charge in rate(terms_of(line, currency)))
    return sum((charge.amount for charge in charges if charge.kind == Kind.RECURRING), zero(currency))


def contract_plan(contract: Contract, recurring: Decimal | None = None) -> ContractPlan:
    """An active contract as the forecast sees it (its lines prefetched, unless ``recurring`` is given)."""
    schedule = schedule_of(contract)
    renewing = renews(contract)
    return ContractPlan(
        id=str(contract.pk),
        cycle=schedule.cycle,
        anchor_day=schedule.anchor_day,
        anchor_month=schedule.anchor_month,
        start=contract.start_date,
        end=contract.end_date,
        timing=Timing(contract.timing),
        recurring=recurring_price(contract) if recurring is None else recurring,
        next_period_start=contract.next_period_start,
        auto_renew=renewing,
        renewal_term_months=contract.renewal_term_months if renewing else None,
        currency=contract.organization.currency,
    )


def subscription_plan(subscription: Subscription) -> SubscriptionPlan:
    """An active or trialing Stripe subscription as the forecast sees it (rules in the module docstring)."""
    zone = subscription.organization.timezone
    next_billing = subscription.current_period_end or subscription.trial_end or subscription.created_at
    return SubscriptionPlan(
        id=str(subscription.pk),
        monthly=subscription.price_monthly,
        next_billing=local_day(next_billing, zone),
        cancel_at_period_end=subscription.cancel_at_period_end,
        currency=subscription.currency.upper(),
    )


def _usage_lines(contract: Contract) -> list[ContractLine]:
    """The USAGE lines that price usage: the first one of each metric (as invoicing bills a metric once)."""
    lines: dict[str, ContractLine] = {}
    for line in contract.lines.all():
        if line.pricing_model == PricingModel.USAGE:
            lines.setdefault(line.metric, line)
    return list(lines.values())


def _month_of_usage_revenue(contract: Contract, usage: Mapping[str, Decimal]) -> Decimal:
    """One month's usage revenue of ``contract``: each metric's ``usage`` priced as one period's (module docstring)."""
    currency = contract.organization.currency
    cycle = Cycle(contract.cycle)
    scale, divide = _PERIOD_MONTHS[cycle]
    total = zero(currency)
    for line in _usage_lines(contract):
        used = usage.get(line.metric, Decimal(0)) * scale
        if divide != 1:
            used = (used / divide).quantize(_QUANTITY, rounding=ROUND_HALF_UP)
        charged = sum(
            (charge.amount for charge in rate(terms_of(line, currency), usage=used) if charge.kind != Kind.RECURRING),
            Decimal(0),
        )
        total += monthly_recurring(cycle, charged, currency)
    return total


def usage_histories(contracts: Sequence[Contract], now: datetime) -> list[UsageHistory]:
    """The usage revenue of each of the last three full months of the contracts with USAGE lines (their organization
    and lines loaded), oldest first: one query, months in each organization's zone."""
    metered = [contract for contract in contracts if _usage_lines(contract)]
    if not metered:
        return []
    # Per zone, the first days of the three months before the current one and of the current one.
    firsts: dict[str, list[date]] = {}
    for contract in metered:
        zone = contract.organization.timezone
        if zone not in firsts:
            current = local_today(zone, now).replace(day=1)
            firsts[zone] = [add_months(current, -back) for back in range(USAGE_MONTHS, -1, -1)]
    slots: list[When] = []
    edges: list[datetime] = []
    for zone, days in firsts.items():
        bounds = [datetime.combine(day, time(), tzinfo=ZoneInfo(zone)) for day in days]
        edges += [bounds[0], bounds[-1]]
        for slot in range(USAGE_MONTHS):
            slots.append(
                When(
                    organization__timezone=zone,
                    recorded_at__gte=bounds[slot],
                    recorded_at__lt=bounds[slot + 1],
                    then=Value(slot),
                )
            )
    rows = (
        UsageRecord.objects.for_orgs({contract.organization for contract in metered})
        .filter(
            contract__in=[contract.pk for contract in metered], recorded_at__gte=min(edges), recorded_at__lt=max(edges)
        )
        .annotate(slot=Case(*slots, default=Value(-1), output_field=IntegerField()))
        .filter(slot__gte=0)
        .values("contract_id", "metric", "slot")
        .annotate(quantity=Sum("quantity"))
        .order_by()
    )
    used: dict[tuple[uuid.UUID, int], dict[str, Decimal]] = defaultdict(dict)
    for row in rows:
        used[(row["contract_id"], row["slot"])][row["metric"]] = row["quantity"]
    histories = []
    for contract in metered:
        days = firsts[contract.organization.timezone]
        full_months = [slot for slot in range(USAGE_MONTHS) if contract.start_date <= days[slot]]
        amounts = tuple(_month_of_usage_revenue(contract, used[(contract.pk, slot)]) for slot in full_months)
        histories.append(UsageHistory(str(contract.pk), amounts))
    return histories


# -- the revenue report ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MrrMonth:
    """One month of the MRR history: the figures of ``metrics`` for the month ending on ``day`` (today for the last)."""

    day: date
    figures: MonthMetrics


@dataclass(frozen=True)
class CurrencyRevenue:
    """The forecast and the metrics of one currency."""

    currency: str
    months: list[MonthForecast]
    metrics: Metrics
    mrr_days: list[date]  # the 13 days of the MRR history, oldest first (the last: the currency's earliest today)

    @property
    def totals(self) -> MonthForecast:
        """The horizon's sums (``month`` is the first month's)."""
        nothing = zero(self.currency)
        parts = {
            name: sum((getattr(month, name) for month in self.months), nothing)
            for name in ("contracts", "subscriptions", "usage", "total")
        }
        return MonthForecast(month=self.months[0].month, **parts)

    @property
    def mrr_by_month(self) -> list[MrrMonth]:
        return [MrrMonth(self.mrr_days[month.month], month) for month in self.metrics.by_month]


_Plans = tuple[list[ContractPlan], list[SubscriptionPlan], list[UsageHistory]]


@dataclass(frozen=True)
class RevenueReport:
    today: date  # the earliest of the organizations' todays: the forecast starts in its month
    months: int
    currencies: list[CurrencyRevenue]

    @property
    def first_month(self) -> date:
        return self.today.replace(day=1)


def revenue_report(
    *, organizations: QuerySet[Organization], months: int = 12, now: datetime | None = None
) -> RevenueReport:
    """The revenue forecast of ``months`` months (1..36, the current one first) and the MRR metrics of the past 12
    months of ``organizations``, per currency. At most six queries."""
    now = now or timezone.now()
    scope = _Scope.read(organizations, now)
    first_month = scope.today.replace(day=1)
    since = history_days(scope.today)[0]
    contracts = _contracts(organizations, since)
    subscriptions = _subscriptions(organizations, since)
    active = [contract for contract in contracts if contract.status == ContractStatus.ACTIVE]
    recurring = {contract.pk: recurring_price(contract) for contract in contracts}
    usage = {history.contract_id: history for history in usage_histories(active, now)}

    # The plans by (currency, the organization's today): forecast() takes one of each.
    groups: dict[tuple[str, date], _Plans] = {}

    def group(currency: str, organization: Organization) -> _Plans:
        return groups.setdefault((currency.upper(), local_today(organization.timezone, now)), ([], [], []))

    for contract in active:
        plans, _, histories = group(contract.organization.currency, contract.organization)
        plans.append(contract_plan(contract, recurring[contract.pk]))
        if str(contract.pk) in usage:
            histories.append(usage[str(contract.pk)])
    for subscription in subscriptions:
        if subscription.status in FORECAST_SUBSCRIPTIONS:
            group(subscription.currency, subscription.organization)[1].append(subscription_plan(subscription))

    history = mrr_history(contracts, subscriptions, now, recurring, invoiced_periods(organizations, contracts, since))
    currencies = sorted(scope.currencies | set(history) | {currency for currency, _ in groups})
    results = []
    for currency in currencies:
        sums = [_empty_month(add_months(first_month, index), currency) for index in range(months)]
        for (code, today), (plans, subscription_plans, histories) in groups.items():
            offset = _months_between(first_month, today.replace(day=1))
            if code != currency or months - offset < 1:
                continue
            expected = forecast(
                today=today,
                months=months - offset,
                contracts=plans,
                subscriptions=subscription_plans,
                usage=histories,
                currency=currency,
            )
            for index, month in enumerate(expected, start=offset):
                sums[index] = _add(sums[index], month)
        results.append(
            CurrencyRevenue(
                currency=currency,
                months=sums,
                metrics=metrics(history=history.get(currency, {}), currency=currency),
                mrr_days=history_days(scope.today_of(currency)),
            )
        )
    return RevenueReport(today=scope.today, months=months, currencies=results)


def _empty_month(month: date, currency: str) -> MonthForecast:
    nothing = zero(currency)
    return MonthForecast(month=month, contracts=nothing, subscriptions=nothing, usage=nothing, total=nothing)


def _add(into: MonthForecast, month: MonthForecast) -> MonthForecast:
    return MonthForecast(
        month=into.month,
        contracts=into.contracts + month.contracts,
        subscriptions=into.subscriptions + month.subscriptions,
        usage=into.usage + month.usage,
        total=into.total + month.total,
    )


# -- receivables ageing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgedInvoice:
    invoice: Invoice
    amount_due: Decimal
    days_overdue: int  # zero or less: not due yet
    bucket: str


@dataclass(frozen=True)
class CurrencyAgeing:
    """The amounts due in one currency by bucket (``AGEING_BUCKETS``, all present), and the invoices in each."""

    currency: str
    buckets: dict[str, Decimal]
    invoices: dict[str, list[AgedInvoice]]

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), zero(self.currency))


def _bucket_of(today: date, due: date, currency: str) -> str:
    """The bucket ``ageing`` puts an invoice due on ``due`` in, asked of ``ageing`` itself (with an amount of one) so
    that the lists of invoices and the totals never disagree."""
    probe = ageing(today=today, open_invoices=[(due, Decimal(1))], currency=currency)
    return next(name for name, amount in probe.items() if amount)


def receivables_ageing(*, organizations: QuerySet[Organization], now: datetime | None = None) -> list[CurrencyAgeing]:
    """The amounts due on the open and uncollectible invoices of ``organizations`` by days past due on each
    organization's today, per currency, with the invoices of each bucket (oldest due first). Three queries."""
    now = now or timezone.now()
    scope = _Scope.read(organizations, now)
    invoices = (
        Invoice.objects.for_orgs(organizations)
        .filter(status__in=AGED_STATUSES)
        .select_related("organization")
        .defer("organization__brand_logo")
        .prefetch_related(Prefetch("credit_notes", queryset=CreditNote.objects.order_by("number")))
        .order_by("due_date", "number", "id")
    )
    grouped: dict[tuple[str, date], list[tuple[date, Decimal]]] = defaultdict(list)
    listed: dict[str, dict[str, list[AgedInvoice]]] = defaultdict(lambda: {name: [] for name in AGEING_BUCKETS})
    for invoice in invoices:
        owed = amount_due(invoice)
        if owed <= 0:
            continue
        currency = invoice.currency.upper()
        today = local_today(invoice.organization.timezone, now)
        grouped[(currency, today)].append((invoice.due_date, owed))
        bucket = _bucket_of(today, invoice.due_date, currency)
        listed[currency][bucket].append(
            AgedInvoice(invoice, quantize(owed, currency), (today - invoice.due_date).days, bucket)
        )
    results = []
    for currency in sorted(scope.currencies | set(listed)):
        buckets = dict.fromkeys(AGEING_BUCKETS, zero(currency))
        for (code, today), pairs in grouped.items():
            if code == currency:
                for name, amount in ageing(today=today, open_invoices=pairs, currency=currency).items():
                    buckets[name] += amount
        results.append(CurrencyAgeing(currency, buckets, listed[currency]))
    return results
