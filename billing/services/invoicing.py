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
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q
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
from events.services import publish_many
from tenancy.audit import audit_record
from tenancy.models import Organization
from tenancy.recordset import insert_many, update_many
from tickets.models import TimeEntry

logger = logging.getLogger(__name__)

BATCH = 200
INVOICE = "invoice"
LATEST_OFFSET = timedelta(hours=14)  # the time zone furthest ahead of UTC


@dataclass
class PlannedLine:
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    kind: str
    period: periods.Period | None = None
    contract_line: ContractLine | None = None


@dataclass
class PlannedInvoice:
    contract: Contract
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


def schedule_of(contract: Contract) -> periods.Schedule:
    return periods.Schedule(periods.Cycle(contract.cycle), contract.anchor_day, contract.start_date.month)


def invoice_on(piece: periods.Period, timing: str) -> date:
    """When a period may be invoiced: its first day in advance, the day after its last in arrears."""
    return piece.start if timing == Timing.ADVANCE else piece.end


def renews(contract: Contract) -> bool:
    return bool(contract.auto_renew and contract.renewal_term_months and contract.end_date)


def position_after(contract: Contract, start: date | None) -> tuple[date | None, date | None]:
    """(next period start, next invoice date) for a contract whose next uninvoiced day is ``start``. Past the end
    of an auto-renewing contract, the first period of its next term (it renews when that period is invoiced)."""
    if start is None:
        return None, None
    end_date = contract.end_date
    if end_date is not None and start >= end_date:
        if not renews(contract):
            return None, None
        end_date = renewed_end(contract)
    cycle_period = periods.period_containing(schedule_of(contract), start)
    end = min(cycle_period.end, end_date) if end_date else cycle_period.end
    return start, invoice_on(periods.Period(start, end), contract.timing)


def _piece(contract: Contract, start: date) -> tuple[periods.Period, periods.Period]:
    """The billed piece starting at ``start`` and its whole cycle period."""
    cycle_period = periods.period_containing(schedule_of(contract), start)
    end = min(cycle_period.end, contract.end_date) if contract.end_date else cycle_period.end
    return periods.Period(start, end), cycle_period


# -- planning --------------------------------------------------------------------------------------------------------


def _span(period: periods.Period) -> str:
    last = period.end - timedelta(days=1)
    return f"{period.start:%-d %b %Y}" if last == period.start else f"{period.start:%-d %b %Y} - {last:%-d %b %Y}"


def terms_of(line: ContractLine, currency: str) -> rating.LineTerms:
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


@dataclass
class BatchInputs:
    """What a batch's planning reads, fetched once per batch."""

    lines: dict[uuid.UUID, list[ContractLine]]
    usage: dict[tuple[uuid.UUID, str], list[tuple[int, datetime, Decimal]]]
    time: dict[uuid.UUID, list[tuple[int, date, int]]]  # by organization: (id, worked on, minutes)
    adjustments: dict[uuid.UUID, list[ContractAdjustment]]
    review: set[uuid.UUID]  # organizations that review drafts
    autopay: set[uuid.UUID] = field(default_factory=set)  # organizations whose saved card is charged on issue
    taken_time: set[int] = field(default_factory=set)
    renewed: list[tuple[Contract, date | None]] = field(default_factory=list)  # (contract, the end it renewed at)


def _inputs(contracts: list[Contract], through: date) -> BatchInputs:
    ids = [contract.pk for contract in contracts]
    lines: dict[uuid.UUID, list[ContractLine]] = defaultdict(list)
    for line in ContractLine.objects.filter(contract_id__in=ids).order_by("contract_id", "position", "id"):
        lines[line.contract_id].append(line)
    usage: dict[tuple[uuid.UUID, str], list[tuple[int, datetime, Decimal]]] = defaultdict(list)
    metered = {line.contract_id for rows in lines.values() for line in rows if line.pricing_model == PricingModel.USAGE}
    if metered:
        rows = UsageRecord.objects.filter(contract_id__in=metered, invoice__isnull=True).values_list(
            "contract_id", "metric", "pk", "recorded_at", "quantity"
        )
        for contract_id, metric, pk, recorded_at, quantity in rows:
            usage[(contract_id, metric)].append((pk, recorded_at, quantity))
    time: dict[uuid.UUID, list[tuple[int, date, int]]] = defaultdict(list)
    blocks = {
        contract.organization_id
        for contract in contracts
        if any(line.pricing_model == PricingModel.HOURS_BLOCK for line in lines[contract.pk])
    }
    if blocks:
        entries = (
            TimeEntry.objects.filter(organization_id__in=blocks, billable=True, worked_on__lt=through + timedelta(1))
            .exclude(pk__in=BilledTime.objects.values("time_entry_id"))
            .values_list("organization_id", "pk", "worked_on", "minutes")
        )
        for organization_id, pk, worked_on, minutes in entries:
            time[organization_id].append((pk, worked_on, minutes))
    adjustments: dict[uuid.UUID, list[ContractAdjustment]] = defaultdict(list)
    for adjustment in ContractAdjustment.objects.filter(contract_id__in=ids, invoice__isnull=True):
        adjustments[adjustment.contract_id].append(adjustment)
    organizations = {contract.organization_id for contract in contracts}
    review, autopay = _choices(organizations)
    return BatchInputs(lines, usage, time, adjustments, review, autopay)


def _choices(organizations: set[uuid.UUID]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    """Of ``organizations``: those that review drafts, and those whose saved card is charged when invoiced."""
    review, autopay = set(), set()
    chosen = BillingSettings.objects.filter(organization_id__in=organizations).filter(
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
    contract: Contract, piece: periods.Period, cycle_period: periods.Period, inputs: BatchInputs
) -> PlannedInvoice:
    organization = contract.organization
    currency = organization.currency
    cut_off = piece.end if contract.timing == Timing.ARREARS else piece.start
    cut_off_at = _midnight(cut_off, ZoneInfo(organization.timezone))
    partial = piece != cycle_period
    plan = PlannedInvoice(contract=contract, period=piece, issue_date=invoice_on(piece, contract.timing), lines=[])
    for line in inputs.lines[contract.pk]:
        usage = hours = Decimal("0")
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
        for charge in rating.rate(terms_of(line, currency), usage=usage, hours=hours):
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
                        line,
                    )
                )
                continue
            kind = {"recurring": LineKind.RECURRING, "usage": LineKind.USAGE, "overage": LineKind.OVERAGE}[charge.kind]
            when = piece if kind == LineKind.RECURRING else None
            plan.lines.append(
                PlannedLine(charge.description, charge.quantity, charge.unit_price, charge.amount, kind, when, line)
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


def renewed_end(contract: Contract) -> date:
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


def _plan_contract(contract: Contract, through: date, inputs: BatchInputs) -> list[PlannedInvoice]:
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
    until the caller's transaction ends, so numbers are gapless and never given twice."""
    if not organization_counts:
        return {}
    DocumentCounter.objects.bulk_create(
        [DocumentCounter(organization_id=pk, kind=kind) for pk in organization_counts], ignore_conflicts=True
    )
    counters = list(
        DocumentCounter.objects.select_for_update()
        .filter(organization_id__in=organization_counts, kind=kind)
        .order_by("organization_id")  # one lock order for every run: no deadlocks
    )
    first = {}
    for counter in counters:
        first[counter.organization_id] = counter.last_number + 1
        counter.last_number += organization_counts[counter.organization_id]
    update_many(counters, ["last_number"])
    return first


def invoice_send_after_commit(invoice: Invoice, *, charge: bool = True) -> None:
    """Email an open invoice once the caller's transaction commits (a Celery job), and charge the saved card first
    when its automatic payment is due. See ``invoices_send_after_commit``."""
    invoices_send_after_commit([invoice], charge=charge)


def invoices_send_after_commit(invoices: Sequence[Invoice], *, charge: bool = True) -> None:
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

        try:
            send_invoices.delay(jobs)
        except Exception:  # the broker is down: the invoices are safe; their emails wait, the hourly run charges them
            logger.warning("could not enqueue the email of %d invoice(s)", len(jobs), exc_info=True)

    transaction.on_commit(_enqueue)


def _write(plans: list[PlannedInvoice], now: datetime, inputs: BatchInputs) -> list[Invoice]:
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for plan in plans:
        if plan.contract.organization_id not in inputs.review:
            counts[plan.contract.organization_id] += 1
    next_number = numbers_take(counts)
    invoices, lines = [], []
    usage_rows, adjustment_rows, billed = [], [], []
    for plan in plans:
        contract = plan.contract
        subtotal, tax, total = plan.totals()
        final = contract.organization_id not in inputs.review
        number = None
        if final:
            number = next_number[contract.organization_id]
            next_number[contract.organization_id] += 1
        invoice = Invoice(
            organization_id=contract.organization_id,
            number=number,
            contract=contract,
            period_start=plan.period.start if plan.period else None,
            period_end=plan.period.end if plan.period else None,
            status=InvoiceStatus.OPEN if final else InvoiceStatus.DRAFT,
            currency=contract.organization.currency,
            issue_date=plan.issue_date,
            due_date=plan.issue_date + timedelta(days=contract.payment_terms_days),
            subtotal=subtotal,
            tax=tax,
            total=total,
            tax_rate=contract.tax_rate,
            tax_label=contract.tax_label,
            finalized_at=now if final else None,
            next_payment_at=now if final and total > 0 and contract.organization_id in inputs.autopay else None,
            created_at=now,
        )
        invoices.append(invoice)
        for position, line in enumerate(plan.lines):
            lines.append(
                InvoiceLine(
                    organization_id=contract.organization_id,
                    invoice=invoice,
                    position=position,
                    description=line.description[:300],
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                    kind=line.kind,
                    period_start=line.period.start if line.period else None,
                    period_end=line.period.end if line.period else None,
                    contract_line=line.contract_line,
                )
            )
        usage_rows += [UsageRecord(pk=pk, invoice_id=invoice.pk) for pk in plan.usage]
        adjustment_rows += [ContractAdjustment(pk=pk, invoice_id=invoice.pk) for pk in plan.adjustments]
        billed += [BilledTime(time_entry_id=pk, invoice_id=invoice.pk) for pk in plan.time]
    insert_many(invoices)
    invoices_send_after_commit([invoice for invoice in invoices if invoice.status == InvoiceStatus.OPEN])
    insert_many(lines)
    update_many(usage_rows, ["invoice"])
    update_many(adjustment_rows, ["invoice"])
    BilledTime.objects.bulk_create(billed)
    events: list[tuple[Organization | None, str, dict[str, object]]] = []
    for invoice, plan in zip(invoices, plans, strict=True):
        payload: dict[str, object] = {
            "id": str(invoice.pk),
            "number": invoice.reference,
            "total": f"{invoice.total:.2f}",
            "currency": invoice.currency,
            "contract": str(plan.contract.pk),
        }
        events.append((plan.contract.organization, "invoice.created", payload))
        if invoice.status == InvoiceStatus.OPEN:
            events.append((plan.contract.organization, "invoice.finalized", payload))
    publish_many(events)
    return invoices


def adjustments_invoice(*, contract: Contract, now: datetime | None = None) -> Invoice | None:
    """Invoice a contract's waiting adjustments at once (organizations that prorate immediately), in the caller's
    transaction. None when nothing waits."""
    now = now or timezone.now()
    waiting = list(
        ContractAdjustment.objects.for_org(contract.organization_id).filter(contract=contract, invoice__isnull=True)
    )
    if not waiting:
        return None
    review, autopay = _choices({contract.organization_id})
    inputs = BatchInputs(
        lines={}, usage={}, time={}, adjustments={contract.pk: waiting}, review=review, autopay=autopay
    )
    today = timezone.localdate(now, ZoneInfo(contract.organization.timezone))
    plan = PlannedInvoice(contract=contract, period=None, issue_date=today, lines=[])
    _add_adjustments(plan, inputs)
    (invoice,) = _write([plan], now, inputs)
    return invoice


# -- the run ---------------------------------------------------------------------------------------------------------


def _today(contract: Contract, now: datetime) -> date:
    return timezone.localdate(now, ZoneInfo(contract.organization.timezone))


def _claim(through: date, after: tuple[date, uuid.UUID] | None, organization: Organization | None) -> list[Contract]:
    due = (
        Contract.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("organization")
        .filter(status=ContractStatus.ACTIVE, next_invoice_on__lte=through)
        .order_by("next_invoice_on", "id")
    )
    if organization is not None:
        due = due.filter(organization=organization)
    if after is not None:
        due = due.filter(Q(next_invoice_on__gt=after[0]) | Q(next_invoice_on=after[0], id__gt=after[1]))
    return list(due[:BATCH])


def invoices_generate(
    *,
    through: date | None = None,
    dry_run: bool = False,
    organization: Organization | None = None,
    now: datetime | None = None,
) -> GenerationReport:
    """Invoice every contract period due on or before ``through``, a batch of contracts per transaction. Without
    ``through``, each contract is invoiced up to today in its organization's time zone."""
    now = now or timezone.now()
    report = GenerationReport()
    local = through is None
    if through is None:
        through = (now + LATEST_OFFSET).date()  # today somewhere: contracts are then held to their own today
    after: tuple[date, uuid.UUID] | None = None
    while True:
        with transaction.atomic():
            contracts = _claim(through, after, organization)
            if not contracts:
                break
            last = contracts[-1]
            if last.next_invoice_on is None:  # claimed for being due: never None here
                raise ValueError(f"contract {last.pk} was claimed without a due date")
            after = (last.next_invoice_on, last.pk)
            inputs = _inputs(contracts, through)
            plans = [
                plan
                for contract in contracts
                for plan in _plan_contract(contract, _today(contract, now) if local else through, inputs)
            ]
            invoices = _write(plans, now, inputs)
            for contract in contracts:
                contract.updated_at = now
            update_many(contracts, ["next_period_start", "next_invoice_on", "status", "end_date", "updated_at"])
            for renewed, old_end in inputs.renewed:
                audit_record(
                    action="contract.renewed",
                    organization=renewed.organization,
                    target=renewed,
                    changes={"end_date": [str(old_end), str(renewed.end_date)]},
                )
            report.contracts += len(contracts)
            report.created += len(invoices)
            report.lines += [_describe(invoice, plan) for invoice, plan in zip(invoices, plans, strict=True)]
            if dry_run:
                transaction.set_rollback(True)
        if len(contracts) < BATCH:
            break
    return report


def _describe(invoice: Invoice, plan: PlannedInvoice) -> str:
    return (
        f"{invoice.reference} {plan.contract.organization.name}: {plan.contract.name}, "
        f"{_span(plan.period) if plan.period else 'adjustments'}, "
        f"{len(plan.lines)} lines, total {invoice.total:.2f} {invoice.currency} ({invoice.status})"
    )
