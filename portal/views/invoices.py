"""The customer's invoices: the organization's issued invoices with a status filter, one invoice (lines, totals,
credit notes, payment history), paying it on the payment provider's page, and its PDF. Also the contract and invoice
summaries the Billing page shows (``contract_rows``, ``invoice_summary``).

Who: owners, admins and managers of the current organization, and its partner's admins, as in the invoice API
(``billing.api_contracts.BILLING_ROLES``). Anyone else gets the portal's answer for a page their role cannot use,
404 (``portal.access.require_manager`` does the same). Staff have no rights of their own here: like every portal
page, these follow the person's membership.

What: only issued invoices, those with a number. A draft is under review and not the customer's yet, and a voided
draft was never sent: both are 404, like another organization's invoice. "Overdue" is derived, never stored: an
OPEN invoice whose due date is before today in the organization's time zone.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F, Prefetch, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST, require_safe

from billing import proration
from billing.api_contracts import BILLING_ROLES
from billing.models import (
    AttemptStatus,
    AttemptTrigger,
    BillingSettings,
    Contract,
    ContractLine,
    ContractStatus,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PaymentAttempt,
    PricingModel,
)
from billing.providers.base import ProviderError
from billing.services.collection import COLLECTIBLE, invoice_checkout_start
from billing.services.invoices import amount_due, invoice_pay_url
from portal import nav
from portal.access import MemberRequest
from tenancy.errors import ConflictError
from tenancy.models import Organization

logger = logging.getLogger(__name__)

PAGE_SIZE = 25
LATEST = 5
OVERDUE = "overdue"
# The list's filters: the value of ``?status=`` and its label. Anything else shows all invoices, with a note.
FILTERS = {
    "all": "All",
    "open": "Open",
    OVERDUE: "Overdue",
    "paid": "Paid",
    "uncollectible": "Uncollectible",
    "void": "Void",
}
NEWEST_FIRST = (F("issue_date").desc(), F("number").desc(), "-created_at", "id")
STATUS_CLASSES = {
    InvoiceStatus.OPEN: "",
    InvoiceStatus.PAID: "tag-ok",
    InvoiceStatus.VOID: "tag-paused",
    InvoiceStatus.UNCOLLECTIBLE: "tag-danger",
}
ATTEMPT_CLASSES = {
    AttemptStatus.SUCCEEDED: "tag-ok",
    AttemptStatus.FAILED: "tag-danger",
    AttemptStatus.REQUIRES_ACTION: "tag-danger",
    AttemptStatus.PROCESSING: "tag-warn",
}
# How an attempt started, as the customer would say it.
TRIGGERS = {
    AttemptTrigger.CUSTOMER: "Paid online",
    AttemptTrigger.AUTOMATIC: "Automatic charge",
    AttemptTrigger.RETRY: "Automatic retry",
    AttemptTrigger.STAFF: "Charged by our team",
    AttemptTrigger.EXTERNAL: "Received by transfer",
}
FAILED = (AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION)
PROVIDER_FAILURE = "The payment service could not process this payment."
PROVIDER_UNAVAILABLE = "The payment service is unavailable; try again shortly."
PER_CYCLE = {"WEEKLY": "a week", "MONTHLY": "a month", "QUARTERLY": "a quarter", "ANNUAL": "a year"}


def can_read_invoices(request: HttpRequest) -> bool:
    """Owners, admins and managers of the current organization, and partner admins over it."""
    if getattr(request, "is_partner_admin", False):
        return True
    return getattr(request, "membership_role", None) in BILLING_ROLES


def require_billing_reader(request: HttpRequest) -> None:
    # Reported as absent, as the portal does for every page a role cannot use.
    if not can_read_invoices(request):
        raise Http404("Only owners, admins and managers see invoices.")


nav.register("Invoices", "portal:billing_invoices", order=25, visible=can_read_invoices)


# -- showing money, quantities and dates ------------------------------------------------------------------------------


def money(amount: Decimal, currency: str) -> str:
    """``AUD 1,234.50``: rounded half up to the currency's minor unit, with thousands separators."""
    value = proration.quantize(amount, currency)
    text = f"{abs(value):,.{proration.minor_units(currency)}f}"
    return f"{currency} -{text}" if value < 0 else f"{currency} {text}"


def unit_price(amount: Decimal, currency: str) -> str:
    """A price as agreed: at least the currency's minor unit, and up to the four places stored (0.005 a call)."""
    places = proration.minor_units(currency)
    exponent = amount.quantize(Decimal("0.0001")).normalize().as_tuple().exponent
    finer = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    shown = max(places, min(4, finer))
    value = amount.quantize(Decimal(1).scaleb(-shown))
    return f"{currency} {value:,.{shown}f}"


def quantity(value: Decimal) -> str:
    shown = value.quantize(Decimal("0.0001")).normalize()
    return f"{shown:,f}" if shown else "0"


def last_day(end: date | None) -> date | None:
    """The last day covered by a period or term whose stored end is exclusive."""
    return end - timedelta(days=1) if end is not None else None


def organization_today(organization: Organization) -> date:
    """Today in the organization's time zone (the server's active zone if the organization's is unknown)."""
    try:
        zone = ZoneInfo(organization.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.localdate()
    return timezone.localdate(timezone.now(), zone)


# -- invoices ---------------------------------------------------------------------------------------------------------


def issued_invoices(organization: Organization) -> QuerySet[Invoice]:
    """The organization's invoices a customer may see: numbered, so neither drafts nor voided drafts."""
    return Invoice.objects.for_org(organization).filter(number__isnull=False).exclude(status=InvoiceStatus.DRAFT)


def _credit_notes() -> Prefetch[Any]:
    return Prefetch("credit_notes", queryset=CreditNote.objects.order_by("number"))


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    overdue: bool
    due: Decimal  # what is still owed: the total less payments and credit notes

    @property
    def status_label(self) -> str:
        return "Overdue" if self.overdue else str(self.invoice.get_status_display())

    @property
    def status_class(self) -> str:
        return "tag-warn" if self.overdue else STATUS_CLASSES.get(InvoiceStatus(self.invoice.status), "")

    @property
    def total_text(self) -> str:
        return money(self.invoice.total, self.invoice.currency)

    @property
    def due_text(self) -> str:
        return money(self.due, self.invoice.currency)

    @property
    def period_last_day(self) -> date | None:
        return last_day(self.invoice.period_end)

    @property
    def payable(self) -> bool:
        return is_payable(self.invoice, self.due)


def is_payable(invoice: Invoice, due: Decimal) -> bool:
    """Something is owed and the invoice takes payments (an UNCOLLECTIBLE one still does)."""
    return invoice.status in COLLECTIBLE and due > 0


def invoice_row(invoice: Invoice, today: date) -> InvoiceRow:
    """Needs the invoice's ``credit_notes`` (prefetch them)."""
    return InvoiceRow(invoice=invoice, overdue=invoice.is_overdue(today), due=amount_due(invoice))


def _filter(invoices: QuerySet[Invoice], show: str, today: date) -> QuerySet[Invoice]:
    if show == "all":
        return invoices
    if show == OVERDUE:
        return invoices.filter(status=InvoiceStatus.OPEN, due_date__lt=today)
    return invoices.filter(status=show.upper())


@require_safe
def billing_invoices(request: MemberRequest) -> HttpResponse:
    require_billing_reader(request)
    organization = request.organization
    wanted = request.GET.get("status", "all")
    show = wanted.strip().lower()
    filter_error = ""
    if show not in FILTERS:
        show = "all"
        filter_error = f"There is no invoice status {wanted[:40]!r}; all invoices are shown."
    today = organization_today(organization)
    invoices = _filter(issued_invoices(organization), show, today).prefetch_related(_credit_notes())
    # Queries: the count, one page of invoices, and their credit notes (for the amounts due).
    page = Paginator(invoices.order_by(*NEWEST_FIRST), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [invoice_row(invoice, today) for invoice in page.object_list],
        "show": show,
        "filters": list(FILTERS.items()),
        "filter_error": filter_error,
    }
    return render(request, "portal/billing/invoices.html", context)


def _invoice_or_404(request: MemberRequest, invoice_id: uuid.UUID, *, whole: bool = True) -> Invoice:
    """One issued invoice of the current organization; ``whole``: with its organization, contract, lines and credit
    notes (what its page and PDF show)."""
    invoices = issued_invoices(request.organization)
    if whole:
        invoices = invoices.select_related("organization", "contract").prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id")), _credit_notes()
        )
    invoice = invoices.filter(pk=invoice_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


def _invoice_url(invoice: Invoice) -> str:
    return reverse("portal:billing_invoice", args=[invoice.pk])


class PayForm(forms.Form):
    save_card = forms.BooleanField(required=False, label="Save this card and pay future invoices automatically")


@dataclass(frozen=True)
class AttemptRow:
    attempt: PaymentAttempt

    @property
    def when(self) -> datetime:
        return self.attempt.completed_at or self.attempt.created_at

    @property
    def how(self) -> str:
        return TRIGGERS.get(AttemptTrigger(self.attempt.trigger), str(self.attempt.get_trigger_display()))

    @property
    def amount_text(self) -> str:
        return money(self.attempt.amount, self.attempt.currency)

    @property
    def outcome(self) -> str:
        return str(self.attempt.get_status_display())

    @property
    def outcome_class(self) -> str:
        return ATTEMPT_CLASSES.get(AttemptStatus(self.attempt.status), "")

    @property
    def reason(self) -> str:
        """Why it failed, as the provider told the card holder; the provider's own errors are not for customers."""
        if self.attempt.status not in FAILED:
            return ""
        if self.attempt.failure_code == "provider_error":
            return PROVIDER_FAILURE
        return self.attempt.failure_message


@require_safe
def billing_invoice(request: MemberRequest, invoice_id: uuid.UUID) -> HttpResponse:
    require_billing_reader(request)
    # Queries: the invoice with its organization and contract, its lines, credit notes and payment attempts.
    invoice = _invoice_or_404(request, invoice_id)
    attempts = list(PaymentAttempt.objects.for_org(request.organization).filter(invoice=invoice).order_by("-number"))
    row = invoice_row(invoice, organization_today(request.organization))
    processing = any(attempt.status == AttemptStatus.PROCESSING for attempt in attempts)
    currency = invoice.currency
    credit_notes = list(invoice.credit_notes.all())
    banner = ""
    if request.GET.get("paid") == "1":
        banner = "paid" if invoice.status == InvoiceStatus.PAID else "confirming"
    context = {
        "invoice": invoice,
        "row": row,
        "lines": [
            {
                "line": line,
                "last_day": last_day(line.period_end),
                "quantity": quantity(line.quantity),
                "unit_price": unit_price(line.unit_price, currency),
                "amount": money(line.amount, currency),
            }
            for line in invoice.lines.all()
        ],
        "subtotal": money(invoice.subtotal, currency),
        "shows_tax": bool(invoice.tax or invoice.tax_label),
        "tax_name": f"{invoice.tax_label or 'Tax'} {invoice.tax_rate.normalize():f}%",
        "tax": money(invoice.tax, currency),
        "total": money(invoice.total, currency),
        "amount_paid": money(invoice.amount_paid, currency),
        "credit_notes": [(note, money(-note.total, currency)) for note in credit_notes],
        "attempts": [AttemptRow(attempt) for attempt in attempts],
        "processing": processing,
        "pay_form": PayForm() if row.payable and not processing else None,
        "banner": banner,
    }
    response = render(request, "portal/billing/invoice.html", context)
    # Coming back from the payment page, the status changes by the second: never show a stored copy.
    add_never_cache_headers(response)
    return response


def _see_other(url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(url, status=303)


@require_POST
def billing_invoice_pay(request: MemberRequest, invoice_id: uuid.UUID) -> HttpResponse:
    """Go to the payment provider's page for what the invoice owes; it returns to the invoice (``?paid=1``)."""
    require_billing_reader(request)
    # The service locks the invoice and reads what it owes itself.
    invoice = _invoice_or_404(request, invoice_id, whole=False)
    form = PayForm(request.POST)
    save_card = bool(form.is_valid() and form.cleaned_data["save_card"])
    try:
        url = invoice_checkout_start(invoice=invoice, user=request.user, save_card=save_card)
    except ConflictError as refused:
        messages.error(request, refused.message)
        return _see_other(_invoice_url(invoice))
    except ProviderError as failure:
        logger.warning("payment page for invoice %s could not be opened: %s", invoice.pk, failure.message)
        messages.error(request, PROVIDER_UNAVAILABLE)
        return _see_other(_invoice_url(invoice))
    except Invoice.DoesNotExist:
        raise Http404("No such invoice.") from None
    return _see_other(url)


@require_safe
def billing_invoice_pdf(request: MemberRequest, invoice_id: uuid.UUID) -> HttpResponse:
    require_billing_reader(request)
    invoice = _invoice_or_404(request, invoice_id)
    from billing import documents  # imported when a PDF is asked for: it loads the PDF library

    pay_url = invoice_pay_url(invoice) if is_payable(invoice, amount_due(invoice)) else ""
    response = HttpResponse(documents.invoice_pdf(invoice, pay_url=pay_url), content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=documents.invoice_pdf_filename(invoice)
    )
    patch_cache_control(response, private=True, no_store=True)
    return response


# -- the Billing page's summaries -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceSummary:
    latest: list[InvoiceRow]
    outstanding: list[str]  # what open invoices still owe, one amount per currency
    open_count: int
    overdue_count: int


def invoice_summary(organization: Organization) -> InvoiceSummary:
    """The latest issued invoices, and what the open ones (OPEN, or UNCOLLECTIBLE: still payable) owe. Two queries:
    the latest invoices together with every open one, then their credit notes."""
    today = organization_today(organization)
    issued = issued_invoices(organization)
    latest_ids = issued.order_by(*NEWEST_FIRST).values("pk")[:LATEST]
    invoices = list(
        issued.filter(Q(pk__in=latest_ids) | Q(status__in=COLLECTIBLE))
        .prefetch_related(_credit_notes())
        .order_by(*NEWEST_FIRST)
    )
    rows = [invoice_row(invoice, today) for invoice in invoices]
    owed: dict[str, Decimal] = {}
    for row in rows:
        if row.payable:
            owed[row.invoice.currency] = owed.get(row.invoice.currency, Decimal("0")) + row.due
    return InvoiceSummary(
        # Newest first, so the latest invoices lead whatever older open ones came with them.
        latest=rows[:LATEST],
        outstanding=[money(amount, currency) for currency, amount in sorted(owed.items())]
        or [money(Decimal("0"), organization.currency)],
        open_count=sum(1 for row in rows if row.payable),
        overdue_count=sum(1 for row in rows if row.overdue),
    )


def saved_card(organization: Organization) -> BillingSettings | None:
    return BillingSettings.objects.filter(organization=organization).first()


def _tiers_text(tiers: Any, currency: str) -> str:
    """``up to 10 at AUD 5.00 each; above 10 at AUD 4.00 each``, from tiers as ``billing.rating`` reads them."""
    parts: list[str] = []
    previous: Decimal | None = None
    for tier in tiers if isinstance(tiers, list) else []:
        try:
            price = Decimal(str(tier.get("unit_price") or "0"))
            fee = Decimal(str(tier.get("flat_fee") or "0"))
            up_to = tier.get("up_to")
            limit = None if up_to in (None, "") else Decimal(str(up_to))
        except (AttributeError, InvalidOperation, TypeError, ValueError):
            return "tiered prices"
        if limit is not None:
            reach = f"up to {quantity(limit)}"
        else:
            reach = f"above {quantity(previous)}" if previous is not None else "any quantity"
        text = f"{reach} at {unit_price(price, currency)} each"
        if fee:
            text += f" plus {money(fee, currency)}"
        parts.append(text)
        previous = limit
    return "; ".join(parts)


def line_price(line: ContractLine, currency: str, cycle: str) -> str:
    """A contract line's price in words, following ``billing.rating``'s models."""
    per = PER_CYCLE.get(cycle, "a period")
    model = line.pricing_model
    included = f", {quantity(line.included_quantity)} included" if line.included_quantity > 0 else ""
    if model == PricingModel.FLAT:
        return f"{money(line.amount, currency)} {per}"
    if model == PricingModel.HOURS_BLOCK:
        text = f"{money(line.amount, currency)} {per} for {quantity(line.included_quantity)} hours"
        if line.overage_rate:
            text += f", then {unit_price(line.overage_rate, currency)} an hour"
        return text
    if model == PricingModel.PER_UNIT:
        return f"{quantity(line.quantity)} at {unit_price(line.unit_price, currency)} each, {per}{included}"
    tiers = _tiers_text(line.tiers, currency)
    if model in (PricingModel.TIERED_GRADUATED, PricingModel.TIERED_VOLUME):
        return f"{quantity(line.quantity)} units, {per}: {tiers}{included}"
    measure = line.metric or "unit"
    if tiers:
        return f"By {measure} used: {tiers}{included}"
    return f"{unit_price(line.unit_price, currency)} per {measure} used{included}"


@dataclass(frozen=True)
class ContractRow:
    contract: Contract
    lines: list[tuple[ContractLine, str]]  # each line with its price in words
    last_day: date | None
    invoicing_paused: bool


def contract_rows(organization: Organization) -> list[ContractRow]:
    """The organization's active and suspended contracts with their lines (two queries)."""
    contracts = (
        Contract.objects.for_org(organization)
        .filter(status__in=(ContractStatus.ACTIVE, ContractStatus.SUSPENDED))
        .prefetch_related(Prefetch("lines", queryset=ContractLine.objects.order_by("position", "id")))
        .order_by("name", "id")
    )
    currency = organization.currency
    return [
        ContractRow(
            contract=contract,
            lines=[(line, line_price(line, currency, contract.cycle)) for line in contract.lines.all()],
            last_day=last_day(contract.end_date),
            invoicing_paused=contract.status == ContractStatus.SUSPENDED,
        )
        for contract in contracts
    ]
