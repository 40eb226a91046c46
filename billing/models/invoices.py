"""Invoices Keel issues itself (contract periods and manual invoices), their lines, and credit notes.

Numbers are gapless per organization and kind of document: a ``DocumentCounter`` row is locked to hand out the next
one when an invoice is finalized (drafts have no number yet), so a number is never skipped or used twice. One
invoice per contract period: ``(contract, period_start)`` is unique. Amounts follow DESIGN.md's money rules: each
line is rounded half up to the currency's minor unit and the totals are sums of lines.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from django.db import models
from django.db.models import Q
from django.utils import timezone

from billing.models.contracts import Contract, ContractLine, money
from tenancy.models import Organization, TenantModel


class DocumentCounter(models.Model):
    """The last number an organization gave a kind of document (``invoice``, ``credit_note``)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "kind"], name="document_counter_per_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.last_number}"


def invoice_reference(number: int | None, pk: uuid.UUID) -> str:
    """How people refer to an invoice: its number once it has one, else its draft id."""
    return f"INV-{number:05d}" if number else f"Draft {str(pk)[:8]}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    OPEN = "OPEN", "Open"
    PAID = "PAID", "Paid"
    VOID = "VOID", "Void"
    UNCOLLECTIBLE = "UNCOLLECTIBLE", "Uncollectible"


class LineKind(models.TextChoices):
    RECURRING = "recurring", "Recurring"
    PRORATION = "proration", "Proration"
    USAGE = "usage", "Usage"
    OVERAGE = "overage", "Overage"
    TIME = "time", "Time"
    ADJUSTMENT = "adjustment", "Adjustment"


class Invoice(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveIntegerField(null=True, blank=True, help_text="Given when the invoice is finalized.")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True, help_text="Exclusive.")
    status = models.CharField(max_length=13, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    currency = models.CharField(max_length=3)
    issue_date = models.DateField()
    due_date = models.DateField()
    subtotal = money()
    tax = money()
    total = money()
    amount_paid = money()
    tax_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0"))
    tax_label = models.CharField(max_length=20, blank=True)
    memo = models.CharField(max_length=500, blank=True)
    finalized_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    # Collection: when the next automatic charge is due (none when nothing is scheduled), how many tries were made,
    # which overdue reminders went out (days from the due date), and the late fee's invoice once one is charged.
    next_payment_at = models.DateTimeField(null=True, blank=True)
    payment_attempts = models.PositiveSmallIntegerField(default=0)
    reminders_sent = models.JSONField(default=list, blank=True)
    overdue_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was first seen unpaid after its due date."
    )
    is_late_fee = models.BooleanField(default=False, help_text="This invoice charges a late fee on another.")
    late_fee_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="late_fee_for"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issue_date", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "period_start"], condition=Q(contract__isnull=False), name="invoice_per_period"
            ),
            models.UniqueConstraint(
                fields=["organization", "number"], condition=Q(number__isnull=False), name="invoice_number_per_org"
            ),
            models.CheckConstraint(condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            # A draft has no number yet; a voided draft never gets one. Everything issued has one.
            models.CheckConstraint(
                condition=Q(status__in=["DRAFT", "VOID"]) | Q(number__isnull=False), name="invoice_numbered_once_issued"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "due_date"], name="invoice_org_status_due"),
            models.Index(fields=["organization", "-issue_date"], name="invoice_org_issued"),
            models.Index(
                fields=["next_payment_at"], condition=Q(next_payment_at__isnull=False), name="invoice_payment_due"
            ),
            models.Index(fields=["due_date"], condition=Q(status="OPEN"), name="invoice_open_due"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return invoice_reference(self.number, self.id)

    @property
    def amount_due(self) -> Decimal:
        """What the customer still owes: the total, less payments and credit notes (prefetch ``credit_notes``)."""
        credited = sum((note.total for note in self.credit_notes.all()), Decimal("0"))
        return max(self.total - self.amount_paid - credited, Decimal("0"))

    def is_overdue(self, today: date) -> bool:
        return self.status == InvoiceStatus.OPEN and self.due_date < today


class InvoiceLine(TenantModel):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal("1"))
    unit_price = money()
    amount = money()
    kind = models.CharField(max_length=12, choices=LineKind.choices, default=LineKind.RECURRING)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    contract_line = models.ForeignKey(ContractLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.description


class CreditNoteKind(models.TextChoices):
    VOID = "void", "Voided invoice"
    ADJUSTMENT = "adjustment", "Adjustment"


class CreditNote(TenantModel):
    """Money taken back from an invoice: all of it when it is voided, or part of it as an adjustment."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveIntegerField()
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_notes")
    kind = models.CharField(max_length=12, choices=CreditNoteKind.choices)
    reason = models.CharField(max_length=500)
    subtotal = money()
    tax = money()
    total = money()
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="credit_note_number_per_org"),
        ]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"CN-{self.number:05d}"
