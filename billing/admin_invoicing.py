"""Staff screens for contract billing: contracts with their lines, invoices with their lines, credit notes and
payment attempts, and each organization's billing settings.

Money moves only through ``billing.services``: a draft contract and its lines are edited here (checked by the same
rules as the API), an active contract's pricing changes through the API so that the change is prorated, and an
invoice is never edited in place. The invoice actions (approve drafts, void, charge the saved card, email again)
call the services one invoice at a time and report what each did.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from billing.models import (
    AttemptStatus,
    BillingSettings,
    Contract,
    ContractLine,
    ContractStatus,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PaymentAttempt,
)
from billing.services.collection import invoice_charge
from billing.services.contracts import LINE_FIELDS, ContractTerms, contract_activate, line_check, terms_check
from billing.services.invoices import amount_due, invoice_finalize, invoice_resend, invoice_void
from tenancy.errors import ConflictError, ServiceValidationError

# What may change on a contract that is invoicing: nothing that moves its periods or prices.
ACTIVE_EDITABLE = {"name", "payment_terms_days", "auto_renew", "renewal_term_months"}


def _errors_onto(form: forms.BaseForm, bad: ServiceValidationError) -> None:
    for field, reasons in bad.message_dict.items():
        form.add_error(field if field in form.fields else None, reasons)


class ContractLineForm(forms.ModelForm):
    class Meta:
        model = ContractLine
        fields = ("position", *LINE_FIELDS)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        contract = getattr(self.instance, "contract", None)
        organization = getattr(contract, "organization", None)
        if organization is None or self.errors or data.get("DELETE"):
            return data
        try:
            line_check(organization, {name: data.get(name) for name in LINE_FIELDS})
        except ServiceValidationError as bad:
            _errors_onto(self, bad)
        return data


class ContractLineInline(admin.TabularInline):
    model = ContractLine
    form = ContractLineForm
    extra = 0
    fields = ("position", *LINE_FIELDS)

    def _draft(self, obj: Contract | None) -> bool:
        return obj is None or obj.status == ContractStatus.DRAFT

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._draft(obj) and super().has_delete_permission(request, obj)


TERMS = (
    "name",
    "start_date",
    "end_date",
    "cycle",
    "anchor_day",
    "timing",
    "payment_terms_days",
    "tax_rate",
    "tax_label",
    "auto_renew",
    "renewal_term_months",
)


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ("organization", *TERMS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "anchor_day" in self.fields:
            self.fields["anchor_day"].required = False
            self.fields["anchor_day"].help_text = "Empty: the start date's day (weekday for weekly contracts)."

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        merged: dict[str, Any] = {name: data.get(name, getattr(self.instance, name, None)) for name in TERMS}
        if self.errors or merged["start_date"] is None:
            return data
        if merged["anchor_day"] is None and "anchor_day" in self.fields:
            start = merged["start_date"]
            data["anchor_day"] = merged["anchor_day"] = start.isoweekday() if merged["cycle"] == "WEEKLY" else start.day
        terms = ContractTerms(**merged)
        errors = terms_check(terms)
        if errors:
            _errors_onto(self, ServiceValidationError(errors))
        return data


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    form = ContractForm
    list_display = ["name", "organization", "status", "cycle", "timing", "start_date", "end_date", "next_invoice_on",
                    "auto_renew"]  # fmt: skip
    list_filter = ["status", "cycle", "timing", "auto_renew"]
    search_fields = ["name", "organization__name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    inlines = [ContractLineInline]
    actions = ["activate"]

    def get_readonly_fields(self, request: HttpRequest, obj: Contract | None = None) -> list[str]:
        state = ["status", "next_period_start", "next_invoice_on", "renewal_notice_for", "created_at", "updated_at"]
        state = [name for name in state if hasattr(Contract, name)]
        if obj is None or obj.status == ContractStatus.DRAFT:
            return state
        return state + [name for name in ("organization", *TERMS) if name not in ACTIVE_EDITABLE]

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for line_form in formset.forms:
            line_form.instance.organization_id = form.instance.organization_id
        super().save_formset(request, form, formset, change)

    @admin.action(description="Activate the selected draft contracts (start invoicing)", permissions=["change"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        done = 0
        for contract in queryset.filter(status__in=[ContractStatus.DRAFT, ContractStatus.SUSPENDED]):
            contract_activate(contract=contract, actor=request.user if request.user.is_authenticated else None)
            done += 1
        self.message_user(request, f"{done} contract(s) activated; others were already active or ended.")


class _ReadOnlyInline:
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InvoiceLineInline(_ReadOnlyInline, admin.TabularInline):
    model = InvoiceLine
    fields = readonly_fields = ("description", "kind", "quantity", "unit_price", "amount", "period_start", "period_end")


class CreditNoteInline(_ReadOnlyInline, admin.TabularInline):
    model = CreditNote
    fields = readonly_fields = ("reference", "kind", "reason", "subtotal", "tax", "total", "created_at")


class PaymentAttemptInline(_ReadOnlyInline, admin.TabularInline):
    model = PaymentAttempt
    fields = readonly_fields = ("number", "trigger", "status", "amount", "failure_code", "decline_code",
                                "hard_decline", "failure_message", "created_at", "completed_at")  # fmt: skip
    ordering = ["number"]


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Overdue")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
        if self.value() == "yes":
            # A day's grace: the exact date is the organization's, the list is a worklist.
            return queryset.filter(status=InvoiceStatus.OPEN, due_date__lt=timezone.localdate())
        return queryset


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["reference", "organization", "status", "issue_date", "due_date", "total", "amount_paid",
                    "owed", "payment_attempts", "next_payment_at"]  # fmt: skip
    list_filter = ["status", OverdueFilter, "is_late_fee", "currency"]
    search_fields = ["number", "organization__name", "organization__slug", "memo"]
    list_select_related = ["organization"]
    date_hierarchy = "issue_date"
    inlines = [InvoiceLineInline, CreditNoteInline, PaymentAttemptInline]
    actions = ["approve", "charge", "send_again", "void"]

    def get_readonly_fields(self, request: HttpRequest, obj: Invoice | None = None) -> list[str]:
        return [field.name for field in Invoice._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # manual invoices are drafted through the API, where lines are checked

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).prefetch_related("credit_notes")

    @admin.display(description="Amount due")
    def owed(self, invoice: Invoice) -> str:
        return f"{amount_due(invoice):.2f}"

    def _each(self, request: HttpRequest, queryset: QuerySet[Invoice], work: Any, verb: str) -> None:
        done, refused = 0, []
        for invoice in queryset.select_related("organization"):
            try:
                work(invoice)
                done += 1
            except (ConflictError, ServiceValidationError) as bad:
                reason = bad.message if isinstance(bad, ConflictError) else " ".join(bad.messages)
                refused.append(f"{invoice.reference}: {reason}")
        self.message_user(request, f"{done} invoice(s) {verb}.", messages.SUCCESS if done else messages.INFO)
        if refused:
            self.message_user(request, "Not done: " + "; ".join(refused), messages.WARNING)

    def _actor(self, request: HttpRequest) -> Any:
        return request.user if request.user.is_authenticated else None

    @admin.action(description="Approve the selected drafts (number and send them)", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._each(request, queryset, lambda invoice: invoice_finalize(invoice=invoice, actor=self._actor(request)),
                   "approved and sent")  # fmt: skip

    @admin.action(description="Charge the saved card now", permissions=["change"])
    def charge(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        def work(invoice: Invoice) -> None:
            attempt = invoice_charge(invoice_id=invoice.pk, organization_id=invoice.organization_id,
                                     trigger="staff", actor=self._actor(request))  # fmt: skip
            if attempt is not None and attempt.failure_message:
                pending = attempt.status == AttemptStatus.PENDING  # the provider did not answer; asked again later
                outcome = "not charged yet, asked again automatically" if pending else "declined"
                raise ConflictError(f"{outcome}: {attempt.failure_message}", field="payment")

        self._each(request, queryset, work, "charged")

    @admin.action(description="Email the selected invoices again", permissions=["change"])
    def send_again(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._each(request, queryset, lambda invoice: invoice_resend(invoice=invoice, actor=self._actor(request)),
                   "queued for email")  # fmt: skip

    @admin.action(description="Void the selected invoices (open ones get a credit note)", permissions=["change"])
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        reason = f"Voided by {getattr(request.user, 'email', 'staff')} in the staff admin"
        self._each(request, queryset,
                   lambda invoice: invoice_void(invoice=invoice, reason=reason, actor=self._actor(request)),
                   "voided")  # fmt: skip


@admin.register(PaymentAttempt)
class PaymentAttemptAdmin(admin.ModelAdmin):
    list_display = ["created_at", "invoice", "organization", "number", "trigger", "status", "amount", "currency",
                    "decline_code", "hard_decline"]  # fmt: skip
    list_filter = ["status", "trigger", "hard_decline"]
    search_fields = ["payment_intent_id", "organization__name", "decline_code", "failure_code"]
    list_select_related = ["invoice", "organization"]
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request: HttpRequest, obj: PaymentAttempt | None = None) -> list[str]:
        return [field.name for field in PaymentAttempt._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(BillingSettings)
class BillingSettingsAdmin(admin.ModelAdmin):
    list_display = ["organization", "review_drafts", "autopay", "payment_method_label", "late_fee_percent",
                    "suspend_after_days"]  # fmt: skip
    list_select_related = ["organization"]
    search_fields = ["organization__name", "organization__slug"]
    autocomplete_fields = ["organization"]
