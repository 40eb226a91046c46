"""The hourly collection run (``process_failed_payments``): automatic charges and retries that are due, reminders
before and after due dates, late fees, and suspending organizations whose failed payments stay unpaid.

Every step records what it did on the invoice (``next_payment_at``, ``reminders_sent``, ``late_fee_invoice``) in the
transaction that does it, so running twice, or on two workers at once, does each thing once. Dates are the
organization's own: a reminder "1 day after the due date" goes out on the day after, where the customer is, and not
before 08:00 there.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing import declines, proration
from billing.models import (
    AttemptStatus,
    AttemptTrigger,
    BillingSettings,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    LineKind,
)
from billing.services.collection import (
    COLLECTIBLE,
    OFF_SESSION,
    SUSPENSION_REASON,
    invoice_charge,
    invoice_notify,
    rate_limited,
)
from billing.services.invoices import amount_due, invoice_payload
from billing.services.invoicing import invoice_send_after_commit, numbers_take
from events.services import publish
from tenancy.audit import audit_record
from tenancy.models import Organization, OrgStatus
from tenancy.services import organization_suspend

logger = logging.getLogger(__name__)

BATCH = 200
REMINDER_HOUR = 8  # local time; reminders wait for the working day to start


@dataclass
class DunningReport:
    charged: int = 0
    paid: int = 0
    failed: int = 0
    reminded: int = 0
    overdue: int = 0
    late_fees: int = 0
    suspended: list[str] = field(default_factory=list)
    held_back: int = 0  # charges due but not asked for: the provider limited the rate, the next run asks


def _local(now: datetime, organization: Organization) -> datetime:
    return timezone.localtime(now, ZoneInfo(organization.timezone))


def charges_due(*, now: datetime, report: DunningReport, limit: int = 5000) -> None:
    """Charge every invoice whose automatic charge or retry has come. ``invoice_charge`` re-checks the time under
    the invoice's lock, so an invoice taken by another worker meanwhile is skipped. A charge the provider refuses for
    its rate (429) ends the run: that invoice waits as the provider asked, the others stay due for the next run."""
    due = list(
        Invoice.objects.filter(next_payment_at__lte=now, status__in=COLLECTIBLE)
        .order_by("next_payment_at")
        .values_list("pk", "organization_id", "payment_attempts")[:limit]
    )
    for position, (invoice_id, organization_id, attempts) in enumerate(due):
        trigger = AttemptTrigger.RETRY if attempts else AttemptTrigger.AUTOMATIC
        try:
            attempt = invoice_charge(
                invoice_id=invoice_id, organization_id=organization_id, trigger=trigger, now=now, scheduled=True
            )
        except Exception:  # one invoice's surprise must not stop the others; it is logged and retried next hour
            logger.exception("charging invoice %s failed", invoice_id)
            continue
        if attempt is None:
            continue
        if rate_limited(attempt):
            # Every request now would be refused as well; the rest stay due (next_payment_at) for the next run.
            report.held_back = len(due) - position - 1
            logger.warning("payment provider limited the rate; %d charges due wait for the next run", report.held_back)
            return
        report.charged += 1
        report.paid += attempt.status == AttemptStatus.SUCCEEDED
        report.failed += attempt.status in (AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION)


def _reminder_offsets() -> tuple[int, ...]:
    return declines.parse_days(settings.BILLING_REMINDER_DAYS)


def overdue_mark(*, now: datetime, report: DunningReport) -> None:
    """Mark each open invoice whose due date has passed in its organization's zone, once, and publish
    ``invoice.overdue`` for it (the reminders after the due date are configured separately)."""
    candidates = Invoice.objects.filter(
        status=InvoiceStatus.OPEN, overdue_at__isnull=True, due_date__lt=timezone.localdate(now) + timedelta(days=1)
    ).values_list("pk", "organization_id", "due_date", "organization__timezone")
    for invoice_id, organization_id, due_date, zone in candidates.iterator(chunk_size=BATCH):
        if timezone.localtime(now, ZoneInfo(zone)).date() <= due_date:
            continue
        with transaction.atomic():
            invoice = (
                Invoice.objects.for_org(organization_id)
                .select_for_update(of=("self",))
                .select_related("organization")
                .filter(pk=invoice_id, status=InvoiceStatus.OPEN, overdue_at__isnull=True)
                .first()
            )
            if invoice is None:
                continue
            invoice.overdue_at = now
            invoice.save(update_fields=["overdue_at", "updated_at"])
            days = (_local(now, invoice.organization).date() - invoice.due_date).days
            publish(invoice.organization, "invoice.overdue",
                    invoice_payload(invoice, days_overdue=days, amount_due=f"{amount_due(invoice):.2f}"))  # fmt: skip
            report.overdue += 1


def reminders_send(*, now: datetime, report: DunningReport) -> None:
    """Remind billing contacts of open invoices on the configured days around the due date. A reminder before the
    due date is skipped when the invoice is paid by saved card; reminders after it go to everyone still owing."""
    offsets = _reminder_offsets()
    if not offsets:
        return
    today = timezone.localdate(now)
    # Days differ by at most one across time zones; the local check below decides.
    window = Q(
        due_date__gte=today - timedelta(days=max(offsets) + 1), due_date__lte=today - timedelta(min(offsets) - 1)
    )
    candidates = Invoice.objects.filter(window, status=InvoiceStatus.OPEN).values_list(
        "pk", "organization_id", "issue_date", "due_date", "reminders_sent", "organization__timezone"
    )
    autopay = set(
        BillingSettings.objects.filter(autopay=True)
        .exclude(payment_method_id="")
        .values_list("organization_id", flat=True)
    )
    for invoice_id, organization_id, issued, due_date, sent, zone in candidates.iterator(chunk_size=BATCH):
        local = timezone.localtime(now, ZoneInfo(zone))
        days = (local.date() - due_date).days
        if local.hour >= REMINDER_HOUR and _reminders_due(offsets, sent, days, (issued - due_date).days):
            report.reminded += _remind(invoice_id, organization_id, offsets, now, organization_id in autopay)


def _reminders_due(offsets: tuple[int, ...], sent: list[int], days: int, issued: int) -> list[int]:
    """Offsets whose day has come and that were not sent. A reminder due before the invoice was issued (short
    payment terms) is not one."""
    return [offset for offset in offsets if issued < offset <= days and offset not in sent]


def _remind(invoice_id: uuid.UUID, organization_id: uuid.UUID, offsets: tuple[int, ...], now: datetime,
            autopay: bool) -> bool:  # fmt: skip
    with transaction.atomic():
        invoice = (
            Invoice.objects.for_org(organization_id)
            .select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=invoice_id, status=InvoiceStatus.OPEN)
            .first()
        )
        if invoice is None:
            return False
        days = (_local(now, invoice.organization).date() - invoice.due_date).days
        # The latest reminder whose day has come and that was not sent: a missed day is caught up once.
        due_offsets = _reminders_due(
            offsets, invoice.reminders_sent, days, (invoice.issue_date - invoice.due_date).days
        )
        if not due_offsets:
            return False
        offset = max(due_offsets)
        invoice.reminders_sent = sorted(set(invoice.reminders_sent) | set(due_offsets))
        invoice.save(update_fields=["reminders_sent", "updated_at"])
        owed = amount_due(invoice)
        if owed <= 0 or (offset < 0 and autopay):
            return False
        return invoice_notify(
            invoice,
            "invoice_reminder",
            amount_due=f"{owed:,.2f}",
            due_date=f"{invoice.due_date:%-d %B %Y}",
            days_overdue=max(days, 0),
            days_left=max(-days, 0),
        )


def late_fees_charge(*, now: datetime, report: DunningReport) -> None:
    """Charge an organization's late fee (a percentage of what is owed) once on each invoice still unpaid
    ``BILLING_LATE_FEE_AFTER_DAYS`` after its due date: a new invoice with one adjustment line, due at once."""
    rates = dict(
        BillingSettings.objects.filter(late_fee_percent__gt=0).values_list("organization_id", "late_fee_percent")
    )
    if not rates:
        return
    latest_due = timezone.localdate(now) - timedelta(days=settings.BILLING_LATE_FEE_AFTER_DAYS - 1)
    candidates = Invoice.objects.filter(
        organization_id__in=list(rates),
        status__in=COLLECTIBLE,
        due_date__lte=latest_due,
        late_fee_invoice__isnull=True,
        is_late_fee=False,
    ).values_list("pk", "organization_id")
    for invoice_id, organization_id in candidates.iterator(chunk_size=BATCH):
        if _late_fee(invoice_id, organization_id, rates[organization_id], now):
            report.late_fees += 1


def _late_fee(invoice_id: uuid.UUID, organization_id: uuid.UUID, percent: Decimal, now: datetime) -> bool:
    with transaction.atomic():
        invoice = (
            Invoice.objects.for_org(organization_id)
            .select_for_update(of=("self",))
            .select_related("organization")
            .filter(pk=invoice_id, status__in=COLLECTIBLE, late_fee_invoice__isnull=True)
            .first()
        )
        if invoice is None:
            return False
        today = _local(now, invoice.organization).date()
        if (today - invoice.due_date).days < settings.BILLING_LATE_FEE_AFTER_DAYS:
            return False
        owed = amount_due(invoice)
        fee = proration.quantize(owed * percent / 100, invoice.currency)
        if fee <= 0:
            return False
        fee_invoice = Invoice.objects.create(
            organization_id=invoice.organization_id,
            number=numbers_take({invoice.organization_id: 1})[invoice.organization_id],
            contract=None,
            status=InvoiceStatus.OPEN,
            currency=invoice.currency,
            issue_date=today,
            due_date=today,
            subtotal=fee,
            tax=Decimal("0"),
            total=fee,
            memo=f"Late fee on invoice {invoice.reference}, unpaid since {invoice.due_date:%-d %B %Y}.",
            is_late_fee=True,
            finalized_at=now,
            created_at=now,
        )
        InvoiceLine.objects.create(
            organization_id=invoice.organization_id,
            invoice=fee_invoice,
            description=f"Late fee: {percent.normalize():f}% of {invoice.currency} {owed:,.2f} overdue on "
            f"{invoice.reference}",
            quantity=Decimal("1"),
            unit_price=fee,
            amount=fee,
            kind=LineKind.ADJUSTMENT,
        )
        invoice.late_fee_invoice = fee_invoice
        invoice.save(update_fields=["late_fee_invoice", "updated_at"])
        audit_record(action="invoice.late_fee", organization=invoice.organization, target=invoice,
                     changes={"invoice": fee_invoice.reference, "amount": f"{fee:.2f}"})  # fmt: skip
        publish(invoice.organization, "invoice.finalized",
                {"id": str(fee_invoice.pk), "number": fee_invoice.reference, "total": f"{fee:.2f}",
                 "currency": fee_invoice.currency, "late_fee_for": invoice.reference})  # fmt: skip
        invoice_send_after_commit(fee_invoice)
    return True


def suspensions_apply(*, now: datetime, report: DunningReport) -> None:
    """Suspend each active organization (that chose a grace period) with an invoice whose automatic payment
    failed and that is still unpaid that many days after its due date."""
    graces: dict[uuid.UUID, int] = {
        organization_id: days
        for organization_id, days in BillingSettings.objects.filter(suspend_after_days__isnull=False).values_list(
            "organization_id", "suspend_after_days"
        )
        if days is not None
    }
    if not graces:
        return
    failed = (
        Invoice.objects.filter(
            organization_id__in=list(graces),
            organization__status=OrgStatus.ACTIVE,
            status__in=COLLECTIBLE,
            attempts__trigger__in=OFF_SESSION,
            attempts__status__in=(AttemptStatus.FAILED, AttemptStatus.REQUIRES_ACTION),
        )
        .select_related("organization")
        .prefetch_related("credit_notes")
        .distinct()
        .order_by("due_date")
    )
    done: set[object] = set()
    for invoice in failed:
        organization = invoice.organization
        if organization.pk in done:
            continue
        today: date = _local(now, organization).date()
        if (today - invoice.due_date).days < graces[organization.pk] or amount_due(invoice) <= 0:
            continue
        organization_suspend(
            organization=organization,
            reason=f"{SUSPENSION_REASON} {invoice.reference}: payment failed and it is "
            f"{(today - invoice.due_date).days} days overdue.",
        )
        done.add(organization.pk)
        report.suspended.append(organization.slug)


def process_failed_payments(*, now: datetime | None = None) -> DunningReport:
    """Beat, hourly: charges and retries due, reminders, late fees, suspensions."""
    now = now or timezone.now()
    report = DunningReport()
    charges_due(now=now, report=report)
    overdue_mark(now=now, report=report)
    reminders_send(now=now, report=report)
    late_fees_charge(now=now, report=report)
    suspensions_apply(now=now, report=report)
    logger.info("collection run: %s", report)
    return report
