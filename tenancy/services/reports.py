"""Scheduled reports: an organization's owners and admins (and its partner's admins) choose a report (SLA, billing,
SMS campaigns), how often it comes (daily, weekly, monthly) and who among the organization's people receives it; it
arrives by email as a CSV attachment at 07:00 in the organization's zone, covering the day, week or month before
(``tenancy.report_periods``).

Sending (:func:`scheduled_reports_send`, every 15 minutes) takes one due report at a time in its own transaction:
it claims the row (``select_for_update(skip_locked=True)``), builds the CSV, moves ``next_run_at`` on and records the
period it covers, and the email leaves when that transaction commits. Two runs at once, or one after the other, send
a period once: the second finds the row locked or no longer due, and a period at or before ``last_period_start`` is
never sent again. After an outage only the latest period goes out, not every one missed. The recipients are checked
again when sending: someone who has left the organization no longer receives its data, and a suspended organization
gets no reports (its schedules still move on).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus
from billing.proration import quantize
from sms.models import Campaign
from sms.selectors import campaign_stats
from tenancy.audit import audit_record
from tenancy.emails import email_send
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import (
    MANAGING_ROLES,
    Membership,
    Organization,
    PartnerMembership,
    ReportFrequency,
    ReportKind,
    ScheduledReport,
    User,
)
from tenancy.report_periods import Period, last_run, next_run, period_label, period_of
from tenancy.spreadsheets import csv_text
from tickets.models import ClockState, Ticket

logger = logging.getLogger(__name__)

MAX_SCHEDULES = 20  # per organization
MAX_RECIPIENTS = 20  # per report
SETTINGS_PATH = "/settings/reports/"


# -- who may do what ----------------------------------------------------------------------------------------------


def may_manage_reports(user: User | None, organization: Organization) -> bool:
    """Owners and admins of the organization, its partner's admins, and staff."""
    if user is None or not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    if (
        organization.partner_id is not None
        and PartnerMembership.objects.filter(user=user, partner_id=organization.partner_id).exists()
    ):
        return True
    return Membership.objects.filter(user=user, organization=organization, role__in=MANAGING_ROLES).exists()


def _require_manager(actor: User | None, organization: Organization) -> None:
    if not may_manage_reports(actor, organization):
        raise PermissionDenied("Only owners and admins schedule reports.")


def report_people(organization: Organization) -> list[str]:
    """The email addresses (lower case, sorted) a report of the organization may go to: its active members and its
    partner's active admins."""
    people = Q(memberships__organization=organization)
    if organization.partner_id is not None:
        people |= Q(partner_memberships__partner_id=organization.partner_id)
    emails = User.objects.filter(people, is_active=True).values_list("email", flat=True).distinct()
    return sorted({email.lower() for email in emails})


def _zone(organization: Organization) -> ZoneInfo:
    try:
        return ZoneInfo(organization.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


# -- input ---------------------------------------------------------------------------------------------------------


def _choice(value: Any, field: str, choices: Sequence[str], errors: dict[str, list[str]]) -> str:
    if not isinstance(value, str) or value not in choices:
        errors[field] = [f"Choose one of: {', '.join(choices)}."]
        return ""
    return value


def _recipients(value: Any, organization: Organization, errors: dict[str, list[str]]) -> list[str]:
    """The recipients as lower-case addresses without duplicates, in the order given; each must be one of
    :func:`report_people`."""
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        errors["recipients"] = ["Send a list of email addresses."]
        return []
    cleaned: list[str] = []
    for item in value:
        email = item.strip().lower()
        if email and email not in cleaned:
            cleaned.append(email)
    if not cleaned:
        errors["recipients"] = ["Choose at least one recipient."]
        return []
    if len(cleaned) > MAX_RECIPIENTS:
        errors["recipients"] = [f"At most {MAX_RECIPIENTS} recipients."]
        return []
    problems = []
    allowed = set(report_people(organization))
    for email in cleaned:
        try:
            validate_email(email)
        except ValidationError:
            problems.append(f"{email[:100]} is not an email address.")
            continue
        if email not in allowed:
            problems.append(f"{email} is not one of the people of {organization.display_name}.")
    if problems:
        errors["recipients"] = problems
    return cleaned


def _default_recipients(actor: User | None) -> list[str]:
    return [actor.email.lower()] if actor is not None and actor.email else []


# -- writes ----------------------------------------------------------------------------------------------------------


def report_schedule_create(
    *,
    organization: Organization,
    actor: User | None,
    report: str,
    frequency: str,
    recipients: list[str] | None = None,
    now: datetime | None = None,
    ip: str | None = None,
) -> ScheduledReport:
    """Schedule ``report`` (``sla``, ``billing``, ``campaigns``) every ``frequency`` (``daily``, ``weekly``,
    ``monthly``) to ``recipients``, by default the actor alone. The first sending is the next 07:00 in the
    organization's zone that is a sending day (any day, a Monday, a 1st).

    Raises PermissionDenied unless the actor may manage reports, ServiceValidationError by field for bad input, and
    ConflictError when the organization already has ``MAX_SCHEDULES`` reports."""
    _require_manager(actor, organization)
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    kind = _choice(report, "report", ReportKind.values, errors)
    every = _choice(frequency, "frequency", ReportFrequency.values, errors)
    people = _recipients(_default_recipients(actor) if recipients is None else recipients, organization, errors)
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        # The organization's row lock makes the count below and the insert one step for concurrent creations.
        Organization.objects.select_for_update().filter(pk=organization.pk).first()
        if ScheduledReport.objects.for_org(organization).count() >= MAX_SCHEDULES:
            raise ConflictError(f"An organization has at most {MAX_SCHEDULES} scheduled reports: delete one first.")
        schedule = ScheduledReport.objects.create(
            organization=organization,
            created_by=actor if actor is not None and actor.is_authenticated else None,
            report=kind,
            frequency=every,
            recipients=people,
            next_run_at=next_run(every, now, _zone(organization)),
        )
        audit_record(
            action="report_schedule.created",
            organization=organization,
            actor=actor,
            target=schedule,
            changes={"report": kind, "frequency": every, "recipients": people},
            ip=ip,
        )
    return schedule


def report_schedule_update(
    *,
    schedule: ScheduledReport,
    actor: User | None,
    report: str | None = None,
    frequency: str | None = None,
    recipients: list[str] | None = None,
    active: bool | None = None,
    now: datetime | None = None,
    ip: str | None = None,
) -> ScheduledReport:
    """Change what a scheduled report sends, how often or to whom, or pause (``active=False``) and resume it; None
    leaves a field as it is. A new frequency, or resuming, sets the next sending afresh from now, so a report
    resumed after a pause does not send the periods it missed."""
    organization = schedule.organization
    _require_manager(actor, organization)
    now = now or timezone.now()
    errors: dict[str, list[str]] = {}
    kind = None if report is None else _choice(report, "report", ReportKind.values, errors)
    every = None if frequency is None else _choice(frequency, "frequency", ReportFrequency.values, errors)
    people = None if recipients is None else _recipients(recipients, organization, errors)
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        locked = ScheduledReport.objects.for_org(organization).select_for_update().get(pk=schedule.pk)
        changes: dict[str, Any] = {}
        for field, value in (("report", kind), ("frequency", every), ("recipients", people), ("active", active)):
            if value is not None and getattr(locked, field) != value:
                changes[field] = [getattr(locked, field), value]
                setattr(locked, field, value)
        if not changes:
            return locked
        if "frequency" in changes or changes.get("active") == [False, True]:
            locked.next_run_at = next_run(locked.frequency, now, _zone(organization))
        locked.save(update_fields=["report", "frequency", "recipients", "active", "next_run_at", "updated_at"])
        audit_record(
            action="report_schedule.updated",
            organization=organization,
            actor=actor,
            target=locked,
            changes=changes,
            ip=ip,
        )
    return locked


def report_schedule_delete(*, schedule: ScheduledReport, actor: User | None, ip: str | None = None) -> None:
    """Stop and forget a scheduled report."""
    organization = schedule.organization
    _require_manager(actor, organization)
    with transaction.atomic():
        audit_record(
            action="report_schedule.deleted",
            organization=organization,
            actor=actor,
            target=schedule,
            changes={"report": schedule.report, "frequency": schedule.frequency},
            ip=ip,
        )
        ScheduledReport.objects.for_org(organization).filter(pk=schedule.pk).delete()


# -- the reports -------------------------------------------------------------------------------------------------


SLA_COLUMNS = (
    "ticket",
    "subject",
    "priority",
    "status",
    "opened_at",
    "first_response_due",
    "first_responded_at",
    "first_response",
    "resolution_due",
    "resolved_at",
    "resolution",
)
BILLING_COLUMNS = (
    "invoice",
    "issue_date",
    "due_date",
    "status",
    "currency",
    "subtotal",
    "tax",
    "total",
    "amount_paid",
    "amount_due",
)
CAMPAIGN_COLUMNS = (
    "campaign",
    "status",
    "launched_at",
    "completed_at",
    "queued",
    "sending",
    "sent",
    "delivered",
    "failed",
    "skipped",
    "cost",
    "currency",
    "delivery_rate",
    "ctr_human",
    "opt_outs",
)
RUNNING = (ClockState.OK, ClockState.AT_RISK)


def _when(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat() if value is not None else ""


def _money(amount: Decimal, currency: str) -> str:
    return str(quantize(amount, currency))


def _clock(target: Any, state: str, due: datetime | None, now: datetime) -> str:
    """A clock's outcome as the SLA report decides it: a running clock past its due time is breached already."""
    if target is None:
        return "No target"
    if state in RUNNING and due is not None and due <= now:
        return ClockState.BREACHED.label
    return str(ClockState(state).label)


def sla_rows(organization: Organization, period: Period, now: datetime) -> Iterable[Sequence[object]]:
    """One row per ticket opened in the period (merged tickets aside), by number (``T-1042``): its priority and
    status, and each SLA clock's due time, when it stopped and its outcome at ``now`` (Met, Breached, On track, At
    risk, Paused, No target). Times are in the organization's zone."""
    zone = period.zone
    tickets = (
        Ticket.objects.for_org(organization)
        .filter(merged_into__isnull=True, created_at__gte=period.start, created_at__lt=period.end)
        .order_by("number")
    )
    for ticket in tickets.iterator(chunk_size=2000):
        yield (
            ticket.reference,
            ticket.subject,
            ticket.get_priority_display(),
            ticket.get_status_display(),
            _when(ticket.created_at, zone),
            _when(ticket.first_response_due, zone),
            _when(ticket.first_responded_at, zone),
            _clock(ticket.first_response_target, ticket.first_response_state, ticket.first_response_due, now),
            _when(ticket.resolution_due, zone),
            _when(ticket.resolved_at, zone),
            _clock(ticket.resolution_target, ticket.resolution_state, ticket.resolution_due, now),
        )


def billing_rows(organization: Organization, period: Period, now: datetime) -> Iterable[Sequence[object]]:
    """One row per invoice issued in the period (drafts aside), by number: its dates, status and amounts rounded
    to the currency's minor unit; ``amount_due`` is the total less payments and credit notes."""
    invoices = (
        Invoice.objects.for_org(organization)
        .filter(number__isnull=False, issue_date__gte=period.first, issue_date__lte=period.last)
        .exclude(status=InvoiceStatus.DRAFT)
        .prefetch_related("credit_notes")
        .order_by("number")
    )
    for invoice in invoices:
        currency = invoice.currency
        yield (
            invoice.reference,
            invoice.issue_date.isoformat(),
            invoice.due_date.isoformat(),
            invoice.get_status_display(),
            currency,
            *(
                _money(amount, currency)
                for amount in (invoice.subtotal, invoice.tax, invoice.total, invoice.amount_paid, invoice.amount_due)
            ),
        )


def campaign_rows(organization: Organization, period: Period, now: datetime) -> Iterable[Sequence[object]]:
    """One row per campaign that was running at some time in the period (launched before its end, not completed or
    canceled before its start), in launch order, with its statistics to date (``sms.selectors.campaign_stats``:
    jobs per state, cost, delivery and human click-through rates, opt-outs)."""
    zone = period.zone
    campaigns = (
        Campaign.objects.for_org(organization)
        .filter(launched_at__isnull=False, launched_at__lt=period.end)
        .filter(Q(completed_at__isnull=True) | Q(completed_at__gte=period.start))
        .select_related("organization")
        .order_by("launched_at", "name")
    )
    for campaign in campaigns:
        stats = campaign_stats(campaign)
        counts = stats["counts"]
        yield (
            campaign.name,
            campaign.get_status_display(),
            _when(campaign.launched_at, zone),
            _when(campaign.completed_at, zone),
            counts["QUEUED"],
            counts["SENDING"],
            counts["SENT"],
            counts["DELIVERED"],
            counts["FAILED"],
            counts["SKIPPED"],
            stats["cost"],
            stats["currency"],
            "" if stats["delivery_rate"] is None else stats["delivery_rate"],
            "" if stats["ctr_human"] is None else stats["ctr_human"],
            stats["opt_outs"],
        )


SOURCES = {
    ReportKind.SLA: (SLA_COLUMNS, sla_rows),
    ReportKind.BILLING: (BILLING_COLUMNS, billing_rows),
    ReportKind.CAMPAIGNS: (CAMPAIGN_COLUMNS, campaign_rows),
}


def report_csv(report: str, organization: Organization, period: Period, now: datetime) -> tuple[str, int]:
    """The report as CSV text (header first, every cell safe from spreadsheet formulas) and its number of rows."""
    columns, rows = SOURCES[ReportKind(report)]
    listed = list(rows(organization, period, now))
    return csv_text(columns, listed), len(listed)


def report_filename(schedule: ScheduledReport, period: Period) -> str:
    """``acme-billing-2025-09-01.csv``: the organization's slug, the report and the period's first day."""
    return f"{schedule.organization.slug}-{schedule.report}-{period.first.isoformat()}.csv"


# -- sending ---------------------------------------------------------------------------------------------------------


def _claim_due(now: datetime, skip: Iterable[uuid.UUID]) -> ScheduledReport | None:
    return (
        ScheduledReport.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(active=True, next_run_at__lte=now)
        .exclude(pk__in=list(skip))
        .select_related("organization")
        .order_by("next_run_at", "pk")
        .first()
    )


def _deliver(schedule: ScheduledReport, now: datetime) -> bool:
    """Inside the claiming transaction: build and send (on commit) the report of the latest period due, unless it
    went already or nobody may receive it any more, and move the schedule on. True when an email is on its way."""
    organization = schedule.organization
    zone = _zone(organization)
    period = period_of(schedule.frequency, last_run(schedule.frequency, now, zone), zone)
    allowed = set(report_people(organization))
    recipients = [email for email in schedule.recipients if email in allowed]
    fresh = schedule.last_period_start is None or period.first > schedule.last_period_start
    sending = fresh and bool(recipients) and organization.is_active
    if sending:
        content, rows = report_csv(schedule.report, organization, period, now)
        email_send(
            to=recipients,
            template="scheduled_report",
            organization=organization,
            context={
                "organization_name": organization.display_name,
                "report_label": schedule.get_report_display(),
                "frequency_label": schedule.get_frequency_display(),
                "period_label": period_label(schedule.frequency, period),
                "rows": rows,
                "settings_url": f"{settings.SITE_URL}{SETTINGS_PATH}",
            },
            attachments=[(report_filename(schedule, period), content, "text/csv")],
        )
        schedule.last_period_start = period.first
    elif fresh:
        logger.info("scheduled report %s not sent: no recipient left or organization inactive", schedule.pk)
    schedule.last_run_at = now
    schedule.next_run_at = next_run(schedule.frequency, now, zone)
    schedule.save(update_fields=["last_run_at", "next_run_at", "last_period_start", "updated_at"])
    return sending


def scheduled_reports_send(*, now: datetime | None = None) -> int:
    """Send every scheduled report due at ``now``, each in its own transaction; returns how many emails left.

    A report whose building fails is logged and left due (its transaction rolls back), so the next run tries it
    again; the others still go."""
    now = now or timezone.now()
    sent = 0
    failed: set[uuid.UUID] = set()
    while True:
        claimed: uuid.UUID | None = None
        try:
            with transaction.atomic():
                schedule = _claim_due(now, failed)
                if schedule is None:
                    return sent
                claimed = schedule.pk
                if _deliver(schedule, now):
                    sent += 1
        except Exception:
            if claimed is None:
                raise
            logger.exception("scheduled report %s could not be sent; it stays due", claimed)
            failed.add(claimed)
