"""Recurring invoicing: every contract period due by a date becomes one invoice.

``invoices_generate`` claims due contracts a batch at a time (``SELECT … FOR UPDATE SKIP LOCKED`` on the
``contract_invoice_due`` index), plans every period each one owes up to the date, and writes the batch's invoices,
lines, numbers and the contracts' new position in the batch's transaction. So a second run, or two runs at once,
create nothing new (a claimed contract is skipped by the other run, and its position has moved past the periods it
invoiced), a crash loses at most the batch in flight, which the next run does again, and ``(contract, period_start)``
is unique besides. A dry run does the same work in a transaction it rolls back.

What a period's invoice holds (``_plan_period``):
- each line's charges for the period (``billing.rating``), prorated by days when the contract starts or ends inside
  the cycle period (``billing.proration``);
- metered usage not yet billed, recorded before the cut-off: the period's end when billed in arrears, its start when
  billed in advance (usage is charged after it happens);
- for blocks of hours, billable ticket time not yet billed, worked before the same cut-off;
- adjustments waiting for the next invoice (mid-period changes).
Invoices go out OPEN and numbered, or stay DRAFT for organizations that review drafts first.
"""

from __future__ import annotations

import logging
import uuid
from calendar import monthrange
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Func, IntegerField, Q, TextField, Value
from django.db.models.functions import Abs, Cast, Mod
from django.utils import timezone

from billing import periods, proration, rating
from billing.models import (
    BilledTime,
    BillingSettings,
    Contract,
    ContractAdjustment,
    ContractLine,
    ContractStatus,
    Cycle,
    DocumentCounter,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
    PricingModel,
    Timing,
    UsageRecord,
)
from billing.models.invoices import invoice_reference
from events.services import publish_many
from tenancy.audit import audit_record
from tenancy.models import Organization
from tenancy.recordset import among, insert_rows, recordset, update_rows
from tickets.models import TimeEntry

logger = logging.getLogger(__name__)

BATCH = 1000  # contracts per transaction
SEND_JOB = 200  # invoices charged and emailed per job
ZERO = Decimal("0")
KINDS = {"recurring": LineKind.RECURRING, "usage": LineKind.USAGE, "overage": LineKind.OVERAGE}  # a charge's line
UUID_KEY = Contract._meta.pk  # the type of every key the batch queries list: uuid
INVOICE = "invoice"
LATEST_OFFSET = timedelta(hours=14)  # the time zone furthest ahead of UTC


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


class Issued(NamedTuple):
    """An invoice a run wrote: what it reports and what sending it needs."""

    pk: uuid.UUID
    organization_id: uuid.UUID
    number: int | None
    status: str
    total: Decimal
    currency: str
    next_payment_at: datetime | None

    @property
    def reference(self) -> str:
        return invoice_reference(self.number, self.pk)


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


@dataclass
class GenerationReport:
    created: int = 0
    contracts: int = 0
    lines: list[str] = field(default_factory=list)  # one per invoice, for the command's output


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
def _span(period: periods.Period) -> str:
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


def _inputs(contracts: list[Due], through: date, pricer: Pricer) -> BatchInputs:
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
    for adjustment in _adjustments(
        ContractAdjustment.objects.filter(contract_id__in=among(UUID_KEY, ids), invoice__isnull=True)
    ):
        adjustments[adjustment.contract_id].append(adjustment)
    organizations = {contract.organization_id for contract in contracts}
    review, autopay = _choices(organizations)
    return BatchInputs(lines, usage, time, adjustments, review, autopay, pricer=pricer)


def _adjustments(waiting: Any) -> list[AdjustmentRow]:
    return list(
        map(
            AdjustmentRow._make,
            waiting.order_by("effective_on", "created_at", "id").values_list(*AdjustmentRow._fields),
        )
    )


def _choices(organizations: set[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
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
                        f"{charge.description} ({_span(piece)}, {piece.days} of {cycle_period.days} days)",
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
    _add_adjustments(plan, inputs)
    return plan


def _add_adjustments(plan: PlannedInvoice, inputs: BatchInputs) -> None:
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


def _plan_contract(contract: Due, through: date, inputs: BatchInputs) -> list[PlannedInvoice]:
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


# -- writing ---------------------------------------------------------------------------------------------------------


def numbers_take(organization_counts: dict[uuid.UUID, int], kind: str = INVOICE) -> dict[uuid.UUID, int]:
    """Reserve ``count`` consecutive numbers per organization; returns the first of each. The counters stay locked
    until the caller's transaction ends, so numbers are gapless and never given twice.

    PostgreSQL: one upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING``) that creates missing counters and
    advances the others, row by row in organization order, the one lock order every run takes (no deadlocks).
    """
    if not organization_counts:
        return {}
    if connection.vendor == "postgresql":
        table = DocumentCounter._meta.db_table
        organization = DocumentCounter._meta.get_field("organization")
        last = DocumentCounter._meta.get_field("last_number")
        source, document = recordset([organization, last], sorted(organization_counts.items()))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (organization_id, kind, last_number) "  # noqa: S608 - the model's table
                f"SELECT v.organization_id, %s, v.last_number FROM {source} ORDER BY v.organization_id "
                f"ON CONFLICT (organization_id, kind) DO UPDATE SET last_number = {table}.last_number + "
                f"EXCLUDED.last_number RETURNING organization_id, last_number",
                [kind, document],
            )
            return {pk: number - organization_counts[pk] + 1 for pk, number in cursor.fetchall()}
    DocumentCounter.objects.bulk_create(
        [DocumentCounter(organization_id=pk, kind=kind) for pk in organization_counts], ignore_conflicts=True
    )
    counters = list(
        DocumentCounter.objects.select_for_update()
        .filter(organization_id__in=organization_counts, kind=kind)
        .order_by("organization_id")
    )
    first = {}
    for counter in counters:
        first[counter.organization_id] = counter.last_number + 1
        counter.last_number += organization_counts[counter.organization_id]
    DocumentCounter.objects.bulk_update(counters, ["last_number"])
    return first


def invoice_send_after_commit(invoice: Invoice, *, charge: bool = True) -> None:
    """Email an open invoice once the caller's transaction commits (a Celery job), and charge the saved card first
    when its automatic payment is due. See ``invoices_send_after_commit``."""
    invoices_send_after_commit([invoice], charge=charge)


class Sendable(Protocol):
    @property
    def pk(self) -> Any: ...
    @property
    def organization_id(self) -> Any: ...
    @property
    def next_payment_at(self) -> datetime | None: ...


def invoices_send_after_commit(invoices: Sequence[Sendable], *, charge: bool = True) -> None:
    """Email open invoices once the caller's transaction commits: one Celery job for all of them, which charges the
    saved card first where the automatic payment is due (so the email can say the invoice is paid). With the broker
    down they stay unsent, and ``sent_at`` stays empty so staff can see them and send them again; the hourly
    collection run charges them."""
    jobs = [(str(invoice.pk), str(invoice.organization_id), charge and invoice.next_payment_at is not None)
            for invoice in invoices]  # fmt: skip
    if not jobs:
        return

    def _enqueue() -> None:
        from billing.tasks import send_invoices  # the tasks module imports the services

        for start in range(0, len(jobs), SEND_JOB):
            try:
                send_invoices.delay(jobs[start : start + SEND_JOB])
            except Exception:  # the broker is down: the invoices are safe; emails wait, the hourly run charges them
                logger.warning("could not enqueue the email of %d invoice(s)", len(jobs) - start, exc_info=True)
                return

    transaction.on_commit(_enqueue)


INVOICE_COLUMNS = (
    "id", "organization", "number", "contract", "period_start", "period_end", "status", "currency", "issue_date",
    "due_date", "subtotal", "tax", "total", "tax_rate", "tax_label", "finalized_at", "next_payment_at", "created_at",
)  # fmt: skip
LINE_COLUMNS = (
    "organization", "invoice", "position", "description", "quantity", "unit_price", "amount", "kind",
    "period_start", "period_end", "contract_line",
)  # fmt: skip


def _write(plans: list[PlannedInvoice], now: datetime, inputs: BatchInputs) -> list[Issued]:
    """Number and insert the planned invoices with their lines, mark what they bill, and announce them. Rows are
    built as tuples and sent with ``COPY`` (``tenancy.recordset``): a run writes tens of thousands.

    The organizations' invoice counters stay locked from the moment numbers are taken until the transaction ends,
    so everything that needs no number is written first (foreign keys are checked at commit): the lines, what the
    invoices bill, then the numbered invoices and their events."""
    invoice_rows: list[list[object]] = []
    line_rows: list[tuple[object, ...]] = []
    usage_rows: list[tuple[int, uuid.UUID]] = []
    adjustment_rows: list[tuple[int, uuid.UUID]] = []
    billed: list[tuple[int, uuid.UUID]] = []
    issued: list[Issued] = []  # numbered below
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for plan in plans:
        contract = plan.contract
        organization_id = contract.organization_id
        currency = contract.organization.currency
        subtotal, tax, total = plan.totals()
        final = organization_id not in inputs.review
        if final:
            counts[organization_id] += 1
        pk = uuid.uuid4()
        status = InvoiceStatus.OPEN if final else InvoiceStatus.DRAFT
        charge_at = now if final and total > 0 and organization_id in inputs.autopay else None
        issued.append(Issued(pk, organization_id, None, status, total, currency, charge_at))
        period_start, period_end = (plan.period.start, plan.period.end) if plan.period else (None, None)
        invoice_rows.append([
            pk, organization_id, None, contract.pk, period_start, period_end, status, currency, plan.issue_date,
            plan.issue_date + timedelta(days=contract.payment_terms_days), subtotal, tax, total, contract.tax_rate,
            contract.tax_label, now if final else None, charge_at, now,
        ])  # fmt: skip
        for position, line in enumerate(plan.lines):
            line_period = line.period
            line_rows.append((
                organization_id, pk, position, line.description[:300], line.quantity, line.unit_price, line.amount,
                line.kind, line_period.start if line_period else None, line_period.end if line_period else None,
                line.contract_line_id,
            ))  # fmt: skip
        usage_rows += [(record, pk) for record in plan.usage]
        adjustment_rows += [(adjustment, pk) for adjustment in plan.adjustments]
        billed += [(entry, pk) for entry in plan.time]
    insert_rows(InvoiceLine, LINE_COLUMNS, line_rows)
    update_rows(UsageRecord, ["invoice"], usage_rows)
    update_rows(ContractAdjustment, ["invoice"], adjustment_rows)
    insert_rows(BilledTime, ["time_entry", "invoice"], billed)

    next_number = numbers_take(counts)
    events: list[tuple[Payer, str, dict[str, object]]] = []
    for index, (row, plan) in enumerate(zip(invoice_rows, plans, strict=True)):
        written = issued[index]
        if written.status == InvoiceStatus.OPEN:
            row[2] = number = next_number[written.organization_id]
            next_number[written.organization_id] += 1
            written = issued[index] = written._replace(number=number)
        payload: dict[str, object] = {
            "id": str(written.pk),
            "number": written.reference,
            "total": f"{written.total:.2f}",
            "currency": written.currency,
            "contract": str(plan.contract.pk),
        }
        events.append((plan.contract.organization, "invoice.created", payload))
        if written.number is not None:
            events.append((plan.contract.organization, "invoice.finalized", payload))
    insert_rows(Invoice, INVOICE_COLUMNS, invoice_rows)
    invoices_send_after_commit([written for written in issued if written.status == InvoiceStatus.OPEN])
    publish_many(events)
    return issued


def adjustments_invoice(*, contract: Contract, now: datetime | None = None) -> Invoice | None:
    """Invoice a contract's waiting adjustments at once (organizations that prorate immediately), in the caller's
    transaction. None when nothing waits."""
    now = now or timezone.now()
    waiting = _adjustments(
        ContractAdjustment.objects.for_org(contract.organization_id).filter(contract=contract, invoice__isnull=True)
    )
    if not waiting:
        return None
    review, autopay = _choices({contract.organization_id})
    inputs = BatchInputs(
        lines={}, usage={}, time={}, adjustments={contract.pk: waiting}, review=review, autopay=autopay
    )
    today = timezone.localdate(now, ZoneInfo(contract.organization.timezone))
    plan = PlannedInvoice(contract=Due.of(contract), period=None, issue_date=today, lines=[])
    _add_adjustments(plan, inputs)
    (written,) = _write([plan], now, inputs)
    return Invoice.objects.get(pk=written.pk)


# -- the run ---------------------------------------------------------------------------------------------------------


def _today(contract: Due, now: datetime) -> date:
    return timezone.localdate(now, ZoneInfo(contract.organization.timezone))


def _claim(
    through: date,
    after: tuple[date, uuid.UUID] | None,
    organization: Organization | None,
    payers: dict[uuid.UUID, Payer],
    share: tuple[int, int] | None = None,
) -> list[Due]:
    """Lock the next batch of contracts due by ``through`` (skipping those another run holds). ``payers`` caches the
    organizations the run has read. ``share`` (k, n), PostgreSQL only: only the organizations whose hash is k
    modulo n (one worker's share of a run)."""
    due = (
        Contract.objects.select_for_update(skip_locked=True)
        .filter(status=ContractStatus.ACTIVE, next_invoice_on__lte=through)
        .order_by("next_invoice_on", "id")
    )
    if organization is not None:
        due = due.filter(organization=organization)
    if after is not None:
        due = due.filter(Q(next_invoice_on__gt=after[0]) | Q(next_invoice_on=after[0], id__gt=after[1]))
    if share is not None:
        hashed = Func(Cast("organization_id", TextField()), function="hashtext", output_field=IntegerField())
        due = due.alias(share=Abs(Mod(hashed, Value(share[1])))).filter(share=share[0])
    rows = list(due.values_list(*DUE_FIELDS)[:BATCH])
    missing = {row[1] for row in rows} - payers.keys()
    if missing:
        for payer in Organization.objects.filter(pk__in=missing).values_list("pk", "name", "currency", "timezone"):
            payers[payer[0]] = Payer._make(payer)
    return [Due(payers[row[1]], *row) for row in rows]


def _audit_renewals(renewed: list[tuple[Due, date | None]]) -> None:
    contracts = Contract.objects.select_related("organization").in_bulk([due.pk for due, _ in renewed])
    for due, old_end in renewed:
        contract = contracts[due.pk]
        audit_record(
            action="contract.renewed",
            organization=contract.organization,
            target=contract,
            changes={"end_date": [str(old_end), str(due.end_date)]},
        )


def invoices_generate(
    *,
    through: date | None = None,
    dry_run: bool = False,
    organization: Organization | None = None,
    now: datetime | None = None,
    workers: int | None = None,
) -> GenerationReport:
    """Invoice every contract period due on or before ``through``, a batch of contracts per transaction. Without
    ``through``, each contract is invoiced up to today in its organization's time zone.

    On PostgreSQL, outside any transaction, ``workers`` threads (``BILLING_GENERATION_WORKERS`` by default) work at
    once, each on its own connection and its own share of the organizations (so they never wait on each other's
    invoice counters): while one waits on the database (writing, committing), another plans. A dry run, a run inside
    the caller's transaction (whose rows other connections cannot see) and SQLite use one worker, the caller's
    connection."""
    now = now or timezone.now()
    local = through is None
    if through is None:
        through = (now + LATEST_OFFSET).date()  # today somewhere: contracts are then held to their own today
    workers = settings.BILLING_GENERATION_WORKERS if workers is None else workers
    run = _Run(through=through, local=local, dry_run=dry_run, organization=organization, now=now)
    if workers <= 1 or dry_run or connection.vendor != "postgresql" or connection.in_atomic_block:
        return run.batches()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoicing") as pool:
        reports = list(pool.map(lambda k: run.batches(share=(k, workers), close=True), range(workers)))
    report = GenerationReport()
    for part in reports:
        report.created += part.created
        report.contracts += part.contracts
        report.lines += part.lines
    return report


@dataclass(frozen=True)
class _Run:
    through: date
    local: bool  # each contract up to its organization's today, not past ``through``
    dry_run: bool
    organization: Organization | None
    now: datetime

    def batches(self, *, share: tuple[int, int] | None = None, close: bool = False) -> GenerationReport:
        """Claim and invoice batches until none is due (of ``share``: see ``_claim``); ``close``: close this thread's
        connection at the end."""
        try:
            report = GenerationReport()
            after: tuple[date, uuid.UUID] | None = None
            payers: dict[uuid.UUID, Payer] = {}
            pricer = Pricer()
            while True:
                with transaction.atomic():
                    contracts = _claim(self.through, after, self.organization, payers, share)
                    if not contracts:
                        break
                    last = contracts[-1]
                    if last.next_invoice_on is None:  # claimed for being due: never None here
                        raise ValueError(f"contract {last.pk} was claimed without a due date")
                    after = (last.next_invoice_on, last.pk)
                    self._batch(contracts, _inputs(contracts, self.through, pricer), report)
                    if self.dry_run:
                        transaction.set_rollback(True)
                if len(contracts) < BATCH:
                    break
            return report
        finally:
            if close:
                connection.close()

    def _batch(self, contracts: list[Due], inputs: BatchInputs, report: GenerationReport) -> None:
        now = self.now
        plans = [
            plan
            for contract in contracts
            for plan in _plan_contract(contract, _today(contract, now) if self.local else self.through, inputs)
        ]
        update_rows(
            Contract,
            ["next_period_start", "next_invoice_on", "status", "end_date", "updated_at"],
            [
                (contract.pk, contract.next_period_start, contract.next_invoice_on, contract.status,
                 contract.end_date, now)
                for contract in contracts
            ],
        )  # fmt: skip
        invoices = _write(plans, now, inputs)
        if inputs.renewed:
            _audit_renewals(inputs.renewed)
        report.contracts += len(contracts)
        report.created += len(invoices)
        report.lines += [_describe(invoice, plan) for invoice, plan in zip(invoices, plans, strict=True)]


def _describe(invoice: Issued, plan: PlannedInvoice) -> str:
    return (
        f"{invoice.reference} {plan.contract.organization.name}: {plan.contract.name}, "
        f"{_span(plan.period) if plan.period else 'adjustments'}, "
        f"{len(plan.lines)} lines, total {invoice.total:.2f} {invoice.currency} ({invoice.status})"
    )
