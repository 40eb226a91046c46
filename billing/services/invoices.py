"""An invoice's life after it is made: manual invoices and their draft lines, finalizing (which numbers it and sends
it), voiding with a credit note, and partial credits.

Every function is one transaction on the locked invoice; what leaves Keel (the email with its PDF) starts after
commit. A draft has no number: finalizing takes the next one from the organization's row-locked counter, so numbers
have no gaps, and a voided invoice keeps its number (its credit note takes one of its own kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing import documents, proration
from billing.models import (
    BillingSettings,
    CreditNote,
    CreditNoteKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.selectors import billing_contacts
from billing.services.contracts import decimal_field
from billing.services.invoicing import invoice_send_after_commit, numbers_take
from events.services import publish
from notifications.services import notify
from tenancy.audit import audit_record
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User

CREDIT_NOTE = "credit_note"
INVOICE_PDF = "invoice_pdf"
EMAILED = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE)
MANUAL_KINDS = (LineKind.ADJUSTMENT, LineKind.TIME, LineKind.RECURRING, LineKind.USAGE)


def _locked(invoice: Invoice) -> Invoice:
    return (
        Invoice.objects.for_org(invoice.organization_id)
        .select_for_update()
        .select_related("organization")
        .get(pk=invoice.pk)
    )


def invoice_payload(invoice: Invoice, **extra: object) -> dict[str, object]:
    return {
        "id": str(invoice.pk),
        "number": invoice.reference,
        "status": invoice.status,
        "total": f"{invoice.total:.2f}",
        "currency": invoice.currency,
        **extra,
    }


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price: Decimal
    kind: str = LineKind.ADJUSTMENT


def line_input(data: dict[str, Any], prefix: str = "") -> LineInput:
    """A manual line from request data; ServiceValidationError names the field (``lines[2].quantity``)."""
    errors: dict[str, list[str]] = {}
    description = str(data.get("description") or "").strip()
    if not description or len(description) > 300:
        errors[f"{prefix}description"] = ["A description of 1 to 300 characters is required."]
    quantity = decimal_field(data.get("quantity", "1"), f"{prefix}quantity", errors, negative=False)
    unit_price = decimal_field(data.get("unit_price"), f"{prefix}unit_price", errors, negative=True)
    kind = data.get("kind", LineKind.ADJUSTMENT)
    if kind not in MANUAL_KINDS:
        errors[f"{prefix}kind"] = [f"Must be one of {', '.join(MANUAL_KINDS)}."]
    if errors or quantity is None or unit_price is None:
        raise ServiceValidationError(errors)
    return LineInput(description, quantity, unit_price, kind)


def _recompute(invoice: Invoice) -> None:
    """Totals from the lines: each line's amount is already rounded; tax on the subtotal, rounded once."""
    subtotal = sum((line.amount for line in invoice.lines.all()), Decimal("0"))
    invoice.subtotal = subtotal
    invoice.tax = proration.quantize(subtotal * invoice.tax_rate / 100, invoice.currency)
    invoice.total = invoice.subtotal + invoice.tax


def _add_lines(invoice: Invoice, lines: list[LineInput], start: int) -> None:
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            organization_id=invoice.organization_id,
            invoice=invoice,
            position=start + offset,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=proration.quantize(line.quantity * line.unit_price, invoice.currency),
            kind=line.kind,
        )
        for offset, line in enumerate(lines)
    )


def invoice_create(*, organization: Organization, lines: list[dict[str, Any]], actor: User | None = None,
                   payment_terms_days: int = 14, tax_rate: Decimal | None = None, tax_label: str = "GST",
                   memo: str = "", issue_date: date | None = None) -> Invoice:  # fmt: skip
    """A manual invoice (not tied to a contract period), as a draft to review, edit and finalize."""
    errors: dict[str, list[str]] = {}
    checked: list[LineInput] = []
    for index, data in enumerate(lines):
        try:
            checked.append(line_input(data if isinstance(data, dict) else {}, prefix=f"lines[{index}]."))
        except ServiceValidationError as bad:
            errors.update(bad.message_dict)
    if not lines:
        errors["lines"] = ["An invoice needs at least one line."]
    rate = Decimal("10.00") if tax_rate is None else tax_rate
    if not Decimal("0") <= rate <= Decimal("100"):
        errors["tax_rate"] = ["Must be a percentage from 0 to 100."]
    if not 0 <= payment_terms_days <= 365:
        errors["payment_terms_days"] = ["Must be from 0 to 365 days."]
    if len(memo) > 500:
        errors["memo"] = ["At most 500 characters."]
    if errors:
        raise ServiceValidationError(errors)
    issued = issue_date or timezone.localdate(timezone.now(), ZoneInfo(organization.timezone))
    with transaction.atomic():
        invoice = Invoice.objects.create(
            organization=organization, currency=organization.currency, issue_date=issued,
            due_date=issued + timedelta(days=payment_terms_days), tax_rate=rate, tax_label=tax_label[:20],
            memo=memo,
        )  # fmt: skip
        _add_lines(invoice, checked, 0)
        _recompute(invoice)
        invoice.save(update_fields=["subtotal", "tax", "total", "updated_at"])
        audit_record(action="invoice.created", organization=organization, actor=actor, target=invoice)
        publish(organization, "invoice.created", invoice_payload(invoice))
    return invoice


def _draft(invoice: Invoice) -> Invoice:
    locked = _locked(invoice)
    if locked.status != InvoiceStatus.DRAFT:
        raise ConflictError("Only a draft invoice can be edited.", field="status")
    return locked


def invoice_lines_add(*, invoice: Invoice, lines: list[dict[str, Any]], actor: User | None = None) -> Invoice:
    checked = [line_input(data, prefix=f"lines[{index}].") for index, data in enumerate(lines)]
    with transaction.atomic():
        locked = _draft(invoice)
        _add_lines(locked, checked, locked.lines.count())
        _recompute(locked)
        locked.save(update_fields=["subtotal", "tax", "total", "updated_at"])
        audit_record(action="invoice.lines_added", organization=locked.organization, actor=actor, target=locked,
                     changes={"lines": len(checked)})  # fmt: skip
    return locked


def invoice_line_update(*, line: InvoiceLine, data: dict[str, Any], actor: User | None = None) -> InvoiceLine:
    merged = {"description": line.description, "quantity": line.quantity, "unit_price": line.unit_price,
              "kind": line.kind, **data}  # fmt: skip
    checked = line_input(merged)
    with transaction.atomic():
        invoice = _draft(line.invoice)
        locked = InvoiceLine.objects.for_org(invoice.organization_id).select_for_update().get(pk=line.pk)
        locked.description, locked.quantity, locked.unit_price, locked.kind = (
            checked.description, checked.quantity, checked.unit_price, checked.kind,
        )  # fmt: skip
        locked.amount = proration.quantize(checked.quantity * checked.unit_price, invoice.currency)
        locked.save()
        _recompute(invoice)
        invoice.save(update_fields=["subtotal", "tax", "total", "updated_at"])
        audit_record(action="invoice.line_updated", organization=invoice.organization, actor=actor, target=invoice)
    return locked


def invoice_line_delete(*, line: InvoiceLine, actor: User | None = None) -> Invoice:
    with transaction.atomic():
        invoice = _draft(line.invoice)
        if invoice.lines.count() == 1:
            raise ConflictError("An invoice needs at least one line; void the draft instead.", field="lines")
        InvoiceLine.objects.for_org(invoice.organization_id).filter(pk=line.pk).delete()
        _recompute(invoice)
        invoice.save(update_fields=["subtotal", "tax", "total", "updated_at"])
        audit_record(action="invoice.line_deleted", organization=invoice.organization, actor=actor, target=invoice)
    return invoice


def invoice_finalize(*, invoice: Invoice, actor: User | None = None, now: datetime | None = None) -> Invoice:
    """Number a draft and open it for payment (staff approving a reviewed draft, or a manual invoice); it is
    emailed once the transaction commits. Finalizing an open invoice again changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(invoice)
        if locked.status == InvoiceStatus.OPEN:
            return locked
        if locked.status != InvoiceStatus.DRAFT:
            raise ConflictError(f"A {locked.get_status_display().lower()} invoice cannot be finalized.", field="status")
        locked.number = numbers_take({locked.organization_id: 1})[locked.organization_id]
        locked.status = InvoiceStatus.OPEN
        locked.finalized_at = now
        card = BillingSettings.objects.filter(organization_id=locked.organization_id, autopay=True).first()
        if card is not None and card.payment_method_id and locked.total > 0:
            locked.next_payment_at = now
        locked.save(update_fields=["number", "status", "finalized_at", "next_payment_at", "updated_at"])
        audit_record(action="invoice.finalized", organization=locked.organization, actor=actor, target=locked,
                     changes={"number": locked.reference})  # fmt: skip
        publish(locked.organization, "invoice.finalized", invoice_payload(locked))
        invoice_send_after_commit(locked)
    return locked


def invoice_resend(*, invoice: Invoice, actor: User | None = None) -> Invoice:
    """Email an issued invoice again (once the transaction commits). Drafts and void invoices are not sent."""
    with transaction.atomic():
        locked = _locked(invoice)
        if locked.status not in EMAILED:
            raise ConflictError(f"A {locked.get_status_display().lower()} invoice is not sent.", field="status")
        audit_record(action="invoice.sent", organization=locked.organization, actor=actor, target=locked)
        locked.sent_at = None  # not sent again yet: the email job skips invoices already sent
        locked.save(update_fields=["sent_at", "updated_at"])
        invoice_send_after_commit(locked, charge=False)
    return locked


def invoice_pay_url(invoice: Invoice) -> str:
    """The link an invoice email carries: the invoice's page in the customer portal, where it is paid."""
    return f"{settings.SITE_URL}/billing/invoices/{invoice.pk}/"


def invoice_email(*, invoice_id: str, organization_id: str, now: datetime | None = None,
                  unsent_only: bool = False) -> bool:  # fmt: skip
    """Email an issued invoice, with its PDF, to the organization's billing contacts (the job finalizing starts), as
    a notification (``invoice.issued``, retried until sent). A card charge may have paid it meanwhile: the email then
    says so. False when there is nothing to send: the invoice was voided, nobody receives invoices, or (with
    ``unsent_only``) it was sent already: the invoice is locked while it is checked and marked sent, so two runs of
    the job send it once."""
    with transaction.atomic():
        invoice = (
            Invoice.objects.for_org(organization_id)
            .select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=invoice_id)
            .first()
        )
        if invoice is None or invoice.status not in EMAILED or (unsent_only and invoice.sent_at is not None):
            return False
        recipients = billing_contacts(invoice.organization)
        if not recipients:
            return False
        notify(
            organization=invoice.organization,
            event_type="invoice.issued",
            addresses=recipients,
            template="invoice",
            context={**documents.invoice_email_context(invoice, invoice_pay_url(invoice)), "url": "/billing/"},
            attachments=[{"kind": INVOICE_PDF, "id": str(invoice.pk)}],
        )
        Invoice.objects.for_org(invoice.organization_id).filter(pk=invoice.pk).update(sent_at=now or timezone.now())
    return True


def invoice_pdf_attachment(organization_id: Any, invoice_id: str) -> tuple[str, bytes, str]:
    """The invoice's PDF as it is when its email is sent (``notifications.attachments`` kind ``invoice_pdf``)."""
    invoice = Invoice.objects.for_org(organization_id).select_related("organization").filter(pk=invoice_id).first()
    if invoice is None:
        raise LookupError(f"invoice {invoice_id}")
    pdf = documents.invoice_pdf(invoice, pay_url=invoice_pay_url(invoice))
    return documents.invoice_pdf_filename(invoice), pdf, "application/pdf"


def _credit_note(invoice: Invoice, kind: str, reason: str, subtotal: Decimal, now: datetime) -> CreditNote:
    number = numbers_take({invoice.organization_id: 1}, kind=CREDIT_NOTE)[invoice.organization_id]
    tax = proration.quantize(subtotal * invoice.tax_rate / 100, invoice.currency)
    return CreditNote.objects.create(
        organization_id=invoice.organization_id, number=number, invoice=invoice, kind=kind, reason=reason[:500],
        subtotal=subtotal, tax=tax, total=subtotal + tax, currency=invoice.currency, created_at=now,
    )  # fmt: skip


def invoice_void(*, invoice: Invoice, reason: str, actor: User | None = None,
                 now: datetime | None = None) -> Invoice:  # fmt: skip
    """Void a draft or an open invoice. An open one was sent, so it gets a credit note for what was not yet credited;
    a paid one must be refunded instead."""
    now = now or timezone.now()
    reason = str(reason or "").strip()
    if not reason:
        raise ServiceValidationError({"reason": ["Say why the invoice is voided."]})
    with transaction.atomic():
        locked = _locked(invoice)
        if locked.status == InvoiceStatus.VOID:
            return locked
        if locked.status == InvoiceStatus.PAID or locked.amount_paid > 0:
            raise ConflictError("A paid invoice cannot be voided; refund the payment instead.", field="status")
        if locked.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
            credited = sum((note.subtotal for note in locked.credit_notes.all()), Decimal("0"))
            if locked.subtotal - credited:
                _credit_note(locked, CreditNoteKind.VOID, reason, locked.subtotal - credited, now)
        locked.status = InvoiceStatus.VOID
        locked.voided_at = now
        locked.save(update_fields=["status", "voided_at", "updated_at"])
        audit_record(action="invoice.voided", organization=locked.organization, actor=actor, target=locked,
                     changes={"reason": reason})  # fmt: skip
        publish(locked.organization, "invoice.voided", invoice_payload(locked, reason=reason))
    return locked


def credit_note_create(*, invoice: Invoice, amount: Any, reason: str, actor: User | None = None,
                       now: datetime | None = None) -> CreditNote:  # fmt: skip
    """Credit part of an open invoice (before tax): the amount due falls by the credit and its tax."""
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    subtotal = decimal_field(amount, "amount", errors, negative=False)
    if not str(reason or "").strip():
        errors["reason"] = ["Say what the credit is for."]
    if subtotal is not None and subtotal <= 0:
        errors["amount"] = ["Must be more than zero."]
    if errors or subtotal is None:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        locked = _locked(invoice)
        if locked.status not in (InvoiceStatus.OPEN, InvoiceStatus.PAID):
            raise ConflictError("Only an open or paid invoice can be credited.", field="status")
        subtotal = proration.quantize(subtotal, locked.currency)
        credited = sum((note.subtotal for note in locked.credit_notes.all()), Decimal("0"))
        if subtotal > locked.subtotal - credited:
            raise ServiceValidationError({"amount": [f"At most {locked.subtotal - credited:.2f} is left to credit."]})
        note = _credit_note(locked, CreditNoteKind.ADJUSTMENT, str(reason).strip(), subtotal, now)
        audit_record(action="invoice.credited", organization=locked.organization, actor=actor, target=locked,
                     changes={"credit_note": note.reference, "amount": f"{note.total:.2f}"})  # fmt: skip
    return note


def amount_due(invoice: Invoice) -> Decimal:
    """What the customer still owes: the total, less payments and credit notes."""
    return invoice.amount_due
