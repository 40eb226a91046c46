"""Recurring invoicing: every contract period due by a date becomes one invoice.

``invoices_generate`` claims due contracts a batch at a time (``SELECT … FOR UPDATE SKIP LOCKED`` on the
``contract_invoice_due`` index), plans every period each one owes up to the date, and writes the batch's invoices,
lines, numbers and the contracts' new position in the batch's transaction. So a second run, or two runs at once,
create nothing new (a claimed contract is skipped by the other run, and its position has moved past the periods it
invoiced), a crash loses at most the batch in flight, which the next run does again, and ``(contract, period_start)``
is unique besides. A dry run does the same work in a transaction it rolls back.

What a period's invoice holds is planned in ``billing.services.planning``. Invoices go out OPEN and numbered, or
stay DRAFT for organizations that review drafts first.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Func, IntegerField, Q, TextField, Value
from django.db.models.functions import Abs, Cast, Mod
from django.utils import timezone

from billing.models import (
    BilledTime,
    Contract,
    ContractAdjustment,
    ContractStatus,
    DocumentCounter,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    UsageRecord,
)
from billing.models.invoices import invoice_reference
from billing.services.planning import (
    DUE_FIELDS,
    BatchInputs,
    Due,
    Payer,
    PlannedInvoice,
    Pricer,
    add_adjustments,
    adjustment_rows,
    batch_inputs,
    organization_choices,
    period_label,
    plan_contract,
)
from events.services import publish_many
from tenancy.audit import audit_record
from tenancy.models import Organization
from tenancy.recordset import insert_rows, recordset, update_rows

logger = logging.getLogger(__name__)

BATCH = 1000  # contracts per transaction
SEND_JOB = 200  # invoices charged and emailed per job
INVOICE = "invoice"
LATEST_OFFSET = timedelta(hours=14)  # the time zone furthest ahead of UTC
# An invoice's email job normally runs within minutes of the commit; one still unsent after UNSENT_GRACE lost its job
# (queued again by ``invoices_unsent_send``). Older than UNSENT_WITHIN, it is left to staff.
UNSENT_GRACE = timedelta(hours=1)
UNSENT_WITHIN = timedelta(days=2)


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
class GenerationReport:
    created: int = 0
    contracts: int = 0
    lines: list[str] = field(default_factory=list)  # one per invoice, for the command's output


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
    down, or the worker gone between the commit and the queueing, they stay unsent (``sent_at`` empty, which staff
    see) until ``invoices_unsent_send`` queues them again; the hourly collection run charges them."""
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


def invoices_unsent_send(*, now: datetime | None = None) -> int:
    """Beat: queue the email of issued invoices whose job never ran (see ``invoices_send_after_commit``): finalized
    between ``UNSENT_WITHIN`` and ``UNSENT_GRACE`` ago and still unsent. The job sends each invoice once however often
    it is queued (``unsent_only``); charging is left to the collection run. Returns how many were queued."""
    from billing.services.invoices import EMAILED  # that module imports this one

    now = now or timezone.now()
    unsent = list(
        Invoice.objects.filter(status__in=EMAILED, sent_at__isnull=True)
        .filter(finalized_at__lte=now - UNSENT_GRACE, finalized_at__gte=now - UNSENT_WITHIN)
        .only("pk", "organization_id", "next_payment_at")
        .order_by("finalized_at")
    )
    invoices_send_after_commit(unsent, charge=False)
    return len(unsent)


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
    waiting = adjustment_rows(
        ContractAdjustment.objects.for_org(contract.organization_id).filter(contract=contract, invoice__isnull=True)
    )
    if not waiting:
        return None
    review, autopay = organization_choices({contract.organization_id})
    inputs = BatchInputs(
        lines={}, usage={}, time={}, adjustments={contract.pk: waiting}, review=review, autopay=autopay
    )
    today = timezone.localdate(now, ZoneInfo(contract.organization.timezone))
    plan = PlannedInvoice(contract=Due.of(contract), period=None, issue_date=today, lines=[])
    add_adjustments(plan, inputs)
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
                    self._batch(contracts, batch_inputs(contracts, self.through, pricer), report)
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
            for plan in plan_contract(contract, _today(contract, now) if self.local else self.through, inputs)
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
        f"{period_label(plan.period) if plan.period else 'adjustments'}, "
        f"{len(plan.lines)} lines, total {invoice.total:.2f} {invoice.currency} ({invoice.status})"
    )
