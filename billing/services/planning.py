"""Planning recurring invoices: what each contract period owes, worked out from rows (pure pricing and periods).

A run (``billing.services.invoicing``) claims contracts as ``Due`` rows, reads what a batch needs once
(``batch_inputs``), and plans every period each contract owes (``plan_contract``). What a period's invoice holds
(``_plan_period``):
- each line's charges for the period (``billing.rating``), prorated by days when the contract starts or ends inside
  the cycle period (``billing.proration``);
- metered usage not yet billed, recorded before the cut-off: the period's end when billed in arrears, its start when
  billed in advance (usage is charged after it happens);
- for blocks of hours, billable ticket time not yet billed, worked before the same cut-off;
- adjustments waiting for the next invoice (mid-period changes).

Contracts, lines and adjustments are read as rows (named tuples), not model instances: a run reads tens of
thousands. The schedule helpers (``schedule_of``, ``position_after``, ``renewed_end``) take a ``Contract`` as well.
"""

from __future__ import annotations

import uuid
from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from django.db.models import Q

from billing import periods, proration, rating
from billing.models import (
    BilledTime,
    BillingSettings,
    Contract,
    ContractAdjustment,
    ContractLine,
    ContractStatus,
    Cycle,
    LineKind,
    PricingModel,
    Timing,
    UsageRecord,
)
from tenancy.recordset import among
from tickets.models import TimeEntry

ZERO = Decimal("0")
KINDS = {"recurring": LineKind.RECURRING, "usage": LineKind.USAGE, "overage": LineKind.OVERAGE}  # a charge's line
UUID_KEY = Contract._meta.pk  # the type of every key the batch queries list: uuid


class Term(Protocol):
    """What a contract's schedule reads: a ``Contract``, or the ``Due`` a run plans."""

    @property
    def pk(self) -> Any: ...
    @property
    def cycle(self) -> str: ...
    @property
    def anchor_day(self) -> int: ...
    @property
    def start_date(self) -> date: ...
    @property
    def end_date(self) -> date | None: ...
    @property
    def timing(self) -> str: ...
    @property
    def auto_renew(self) -> bool: ...
    @property
    def renewal_term_months(self) -> int | None: ...


class Payer(NamedTuple):
    """The organization a contract bills, as a run reads it."""

    pk: uuid.UUID
    name: str
    currency: str
    timezone: str


@dataclass(slots=True)
class Due:
    """A claimed contract as a run plans it: its terms and its position, which planning moves on (a row, not a
    model instance: a run claims tens of thousands)."""

    organization: Payer
    pk: uuid.UUID
    organization_id: uuid.UUID
    name: str
    start_date: date
    end_date: date | None
    cycle: str
    anchor_day: int
    timing: str
    payment_terms_days: int
    tax_rate: Decimal
    tax_label: str
    auto_renew: bool
    renewal_term_months: int | None
    status: str
    next_period_start: date | None
    next_invoice_on: date | None

    @classmethod
    def of(cls, contract: Contract) -> Due:
        organization = contract.organization
        payer = Payer(organization.pk, organization.name, organization.currency, organization.timezone)
        return cls(payer, *(getattr(contract, name) for name in DUE_FIELDS))


DUE_FIELDS = tuple(name for name in Due.__dataclass_fields__ if name != "organization")


class Priced(Protocol):
    """What pricing reads of a contract line: a ``ContractLine``, or a ``LineRow`` of one."""

    @property
    def pricing_model(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def amount(self) -> Decimal | None: ...
    @property
    def unit_price(self) -> Decimal | None: ...
    @property
    def overage_rate(self) -> Decimal | None: ...
    @property
    def quantity(self) -> Decimal: ...
    @property
    def included_quantity(self) -> Decimal: ...
    @property
    def tiers(self) -> Any: ...


class LineRow(NamedTuple):
    """A contract line as invoicing reads it (a row, not a model instance: a run reads tens of thousands)."""

    pk: int
    contract_id: uuid.UUID
    pricing_model: str
    description: str
    amount: Decimal | None
    unit_price: Decimal | None
    overage_rate: Decimal | None
    quantity: Decimal
    included_quantity: Decimal
    tiers: Any
    metric: str


class AdjustmentRow(NamedTuple):
    pk: int
    contract_id: uuid.UUID
    description: str
    amount: Decimal
    kind: str


@dataclass(slots=True)
class PlannedLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    kind: str
    period: periods.Period | None = None
    contract_line_id: int | None = None


@dataclass
class PlannedInvoice:
    contract: Due
    period: periods.Period | None  # None: an invoice of adjustments alone
    issue_date: date
    lines: list[PlannedLine]
    usage: list[int] = field(default_factory=list)  # UsageRecord ids it bills
    time: list[int] = field(default_factory=list)  # TimeEntry ids it bills
    adjustments: list[int] = field(default_factory=list)  # ContractAdjustment ids it bills

    def totals(self) -> tuple[Decimal, Decimal, Decimal]:
        currency = self.contract.organization.currency
        subtotal = sum((line.amount for line in self.lines), Decimal("0"))
        tax = proration.quantize(subtotal * self.contract.tax_rate / 100, currency)
        return subtotal, tax, subtotal + tax


# -- periods ---------------------------------------------------------------------------------------------------------


def schedule_of(contract: Term) -> periods.Schedule:
    return _schedule(contract.cycle, contract.anchor_day, contract.start_date.month)


# Contracts share a few schedules and periods: ``billing.periods`` is pure, so a run reuses what it worked out.
@lru_cache(maxsize=1024)
def _schedule(cycle: str, anchor_day: int, start_month: int) -> periods.Schedule:
    return periods.Schedule(periods.Cycle(cycle), anchor_day, start_month)


_period_containing = lru_cache(maxsize=8192)(periods.period_containing)


def invoice_on(piece: periods.Period, timing: str) -> date:
    """When a period may be invoiced: its first day in advance, the day after its last in arrears."""
    return piece.start if timing == Timing.ADVANCE else piece.end


def renews(contract: Term) -> bool:
    return bool(contract.auto_renew and contract.renewal_term_months and contract.end_date)


def position_after(contract: Term, start: date | None) -> tuple[date | None, date | None]:
    """(next period start, next invoice date) for a contract whose next uninvoiced day is ``start``. Past the end
    of an auto-renewing contract, the first period of its next term (it renews when that period is invoiced)."""
    if start is None:
        return None, None
    end_date = contract.end_date
    if end_date is not None and start >= end_date:
        if not renews(contract):
            return None, None
        end_date = renewed_end(contract)
    cycle_period = _period_containing(schedule_of(contract), start)
    end = min(cycle_period.end, end_date) if end_date else cycle_period.end
    return start, invoice_on(periods.Period(start, end), contract.timing)


def _piece(contract: Term, start: date) -> tuple[periods.Period, periods.Period]:
    """The billed piece starting at ``start`` and its whole cycle period."""
    cycle_period = _period_containing(schedule_of(contract), start)
    end = min(cycle_period.end, contract.end_date) if contract.end_date else cycle_period.end
    return periods.Period(start, end), cycle_period


# -- planning --------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def period_label(period: periods.Period) -> str:
    last = period.end - timedelta(days=1)
    return f"{period.start:%-d %b %Y}" if last == period.start else f"{period.start:%-d %b %Y} - {last:%-d %b %Y}"


def terms_of(line: Priced, currency: str) -> rating.LineTerms:
    """The pricing terms of a contract line: the fields its model reads (``rating.USES``), the others left out."""
    model = rating.Model(line.pricing_model)
    tiers = tuple(
        rating.Tier(
            up_to=None if tier.get("up_to") in (None, "") else Decimal(str(tier["up_to"])),
            unit_price=Decimal(str(tier.get("unit_price") or 0)),
            flat_fee=Decimal(str(tier.get("flat_fee") or 0)),
        )
        for tier in line.tiers or []
    )
    given: dict[str, object] = {
        "amount": line.amount,
        "unit_price": line.unit_price,
        "overage_rate": line.overage_rate,
        "quantity": line.quantity,
        "included_quantity": line.included_quantity,
        "tiers": tiers,
    }
    if model == rating.Model.USAGE:  # priced either by tiers or by a unit price
        given["unit_price" if tiers else "tiers"] = None if tiers else ()
    used = {name: value for name, value in given.items() if name in rating.USES[model] and value is not None}
    return rating.LineTerms(model=model, description=line.description, currency=currency, **used)  # type: ignore[arg-type]


class Pricer:
    """Rates contract lines for a run, remembering the charges of each distinct line, currency, usage and hours
    (``rating.rate`` is pure, and an MSP's contracts repeat the same products at the same prices and quantities).
    Forgets everything after ``LIMIT`` distinct lines, so a run's memory stays bounded."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._known: dict[tuple[object, ...], tuple[rating.Charge, ...]] = {}

    def rate(self, line: LineRow, currency: str, usage: Decimal, hours: Decimal) -> tuple[rating.Charge, ...]:
        tiers = repr(line.tiers) if line.tiers else ""  # as stored: jsonb keeps its keys in one order
        key = (currency, usage, hours, tiers, *line[2:9])  # the terms: pricing model through included quantity
        charges = self._known.get(key)
        if charges is None:
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            charges = self._known[key] = tuple(rating.rate(terms_of(line, currency), usage=usage, hours=hours))
        return charges


@dataclass
class BatchInputs:
    """What a batch's planning reads, fetched once per batch."""

    lines: dict[uuid.UUID, list[LineRow]]
    usage: dict[tuple[uuid.UUID, str], list[tuple[int, datetime, Decimal]]]
    time: dict[uuid.UUID, list[tuple[int, date, int]]]  # by organization: (id, worked on, minutes)
    adjustments: dict[uuid.UUID, list[AdjustmentRow]]
    review: set[uuid.UUID]  # organizations that review drafts
    autopay: set[uuid.UUID] = field(default_factory=set)  # organizations whose saved card is charged on issue
    taken_time: set[int] = field(default_factory=set)
    renewed: list[tuple[Due, date | None]] = field(default_factory=list)  # (contract, the end it renewed at)
    pricer: Pricer = field(default_factory=Pricer)


def batch_inputs(contracts: list[Due], through: date, pricer: Pricer) -> BatchInputs:
    ids = [contract.pk for contract in contracts]
    lines: dict[uuid.UUID, list[LineRow]] = defaultdict(list)
    ordered = ContractLine.objects.filter(contract_id__in=among(UUID_KEY, ids)).order_by(
        "contract_id", "position", "id"
    )
    for line in map(LineRow._make, ordered.values_list(*LineRow._fields)):
        lines[line.contract_id].append(line)
    usage: dict[tuple[uuid.UUID, str], list[tuple[int, datetime, Decimal]]] = defaultdict(list)
    metered = {line.contract_id for rows in lines.values() for line in rows if line.pricing_model == PricingModel.USAGE}
    if metered:
        records = UsageRecord.objects.filter(
            contract_id__in=among(UUID_KEY, metered), invoice__isnull=True
        ).values_list("contract_id", "metric", "pk", "recorded_at", "quantity")
        for contract_id, metric, pk, recorded_at, quantity in records:
            usage[(contract_id, metric)].append((pk, recorded_at, quantity))
    time: dict[uuid.UUID, list[tuple[int, date, int]]] = defaultdict(list)
    blocks = {
        contract.organization_id
        for contract in contracts
        if any(line.pricing_model == PricingModel.HOURS_BLOCK for line in lines[contract.pk])
    }
    if blocks:
        entries = (
            TimeEntry.objects.filter(
                organization_id__in=among(UUID_KEY, blocks), billable=True, worked_on__lt=through + timedelta(1)
            )
            .exclude(pk__in=BilledTime.objects.values("time_entry_id"))
            .values_list("organization_id", "pk", "worked_on", "minutes")
        )
        for organization_id, pk, worked_on, minutes in entries:
            time[organization_id].append((pk, worked_on, minutes))
    adjustments: dict[uuid.UUID, list[AdjustmentRow]] = defaultdict(list)
    for adjustment in adjustment_rows(
        ContractAdjustment.objects.filter(contract_id__in=among(UUID_KEY, ids), invoice__isnull=True)
    ):
        adjustments[adjustment.contract_id].append(adjustment)
    organizations = {contract.organization_id for contract in contracts}
    review, autopay = organization_choices(organizations)
    return BatchInputs(lines, usage, time, adjustments, review, autopay, pricer=pricer)


def adjustment_rows(waiting: Any) -> list[AdjustmentRow]:
    return list(
        map(
            AdjustmentRow._make,
            waiting.order_by("effective_on", "created_at", "id").values_list(*AdjustmentRow._fields),
        )
    )


def organization_choices(organizations: set[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Of ``organizations``: those that review drafts, and those whose saved card is charged when invoiced."""
    review, autopay = set(), set()
    chosen = BillingSettings.objects.filter(organization_id__in=among(UUID_KEY, organizations)).filter(
        Q(review_drafts=True) | (Q(autopay=True) & ~Q(payment_method_id=""))
    )
    for organization_id, reviews, charges, card in chosen.values_list(
        "organization_id", "review_drafts", "autopay", "payment_method_id"
    ):
        if reviews:
            review.add(organization_id)
        if charges and card:
            autopay.add(organization_id)
    return review, autopay


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def _plan_period(
    contract: Due, piece: periods.Period, cycle_period: periods.Period, inputs: BatchInputs
) -> PlannedInvoice:
    organization = contract.organization
    currency = organization.currency
    cut_off = piece.end if contract.timing == Timing.ARREARS else piece.start
    cut_off_at = _midnight(cut_off, ZoneInfo(organization.timezone))
    partial = piece != cycle_period
    plan = PlannedInvoice(contract=contract, period=piece, issue_date=invoice_on(piece, contract.timing), lines=[])
    for line in inputs.lines[contract.pk]:
        usage = hours = ZERO
        if line.pricing_model == PricingModel.USAGE:
            key = (contract.pk, line.metric)
            records = [row for row in inputs.usage[key] if row[1] < cut_off_at]
            inputs.usage[key] = [row for row in inputs.usage[key] if row[1] >= cut_off_at]  # for a later period
            usage = sum((quantity for _, _, quantity in records), Decimal("0"))
            plan.usage += [pk for pk, _, _ in records]
        elif line.pricing_model == PricingModel.HOURS_BLOCK:
            entries = [
                row for row in inputs.time[organization.pk] if row[1] < cut_off and row[0] not in inputs.taken_time
            ]
            hours = Decimal(sum(minutes for _, _, minutes in entries)) / 60
            plan.time += [pk for pk, _, _ in entries]
            inputs.taken_time.update(pk for pk, _, _ in entries)
        for charge in inputs.pricer.rate(line, currency, usage, hours):
            if charge.kind == "recurring" and partial:
                amount = proration.prorate(charge.amount, piece.days, cycle_period.days, currency)
                plan.lines.append(
                    PlannedLine(
                        f"{charge.description} ({period_label(piece)}, {piece.days} of {cycle_period.days} days)",
                        charge.quantity,
                        charge.unit_price,
                        amount,
                        LineKind.PRORATION,
                        piece,
                        line.pk,
                    )
                )
                continue
            kind = KINDS[charge.kind]
            when = piece if kind == LineKind.RECURRING else None
            plan.lines.append(
                PlannedLine(charge.description, charge.quantity, charge.unit_price, charge.amount, kind, when, line.pk)
            )
    add_adjustments(plan, inputs)
    return plan


def add_adjustments(plan: PlannedInvoice, inputs: BatchInputs) -> None:
    currency = plan.contract.organization.currency
    for adjustment in inputs.adjustments.pop(plan.contract.pk, []):
        amount = proration.quantize(adjustment.amount, currency)
        kind = LineKind.PRORATION if adjustment.kind == "proration" else LineKind.ADJUSTMENT
        plan.lines.append(PlannedLine(adjustment.description, Decimal("1"), amount, amount, kind))
        plan.adjustments.append(adjustment.pk)


def renewed_end(contract: Term) -> date:
    """The end of the next renewal term: ``renewal_term_months`` after the current end, on the anchor day when the
    end falls on it (a term ending 31 January renews to 28 February, then 31 March: no drift), else on the same day
    of the month, clamped to short months."""
    end = contract.end_date
    if end is None or not contract.renewal_term_months:
        raise ValueError(f"contract {contract.pk} has no end or no renewal term to renew for")
    years, month = divmod(end.month - 1 + contract.renewal_term_months, 12)
    year, month = end.year + years, month + 1
    anchored = contract.cycle != Cycle.WEEKLY and end.day == min(
        contract.anchor_day, monthrange(end.year, end.month)[1]
    )
    day = contract.anchor_day if anchored else end.day
    return date(year, month, min(day, monthrange(year, month)[1]))


def plan_contract(contract: Due, through: date, inputs: BatchInputs) -> list[PlannedInvoice]:
    """Every period the contract owes by ``through``; moves the contract's position past them (not saved). An
    auto-renewing contract renews for its term when the first period after its end is invoiced; any other ends
    once its last period is."""
    plans = []
    while contract.next_period_start is not None and contract.next_invoice_on is not None:
        if contract.next_invoice_on > through:
            break
        if contract.end_date is not None and contract.next_period_start >= contract.end_date:
            # The first period of the next term is due: the contract renews now, unless renewal was turned off
            # since the last invoice.
            if not renews(contract):
                contract.next_period_start = contract.next_invoice_on = None
                break
            inputs.renewed.append((contract, contract.end_date))
            contract.end_date = renewed_end(contract)
        piece, cycle_period = _piece(contract, contract.next_period_start)
        plans.append(_plan_period(contract, piece, cycle_period, inputs))
        contract.next_period_start, contract.next_invoice_on = position_after(contract, piece.end)
    if contract.next_period_start is None:
        contract.status = ContractStatus.ENDED
    return plans
