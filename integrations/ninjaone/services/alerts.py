"""NinjaOne alerts become tickets.

A condition activity with status TRIGGERED opens a ticket for the organization linked to the activity's NinjaOne
organization: priority from the alert's severity, the device and the alert in the description, channel NinjaOne.
A RESET adds an internal note to that ticket and, when the organization's settings say so, resolves it.

Nothing opens a second ticket for one problem:

- a delivery NinjaOne repeats (the same activity id) is found in ``WebhookEvent`` and changes nothing;
- the same alert (the same ``seriesUid``) triggering again while it is active changes nothing;
- the same condition on the same device triggering while the ticket of an earlier alert is still open joins that
  ticket (a note, and a higher priority if the new alert is more severe) instead of opening another.

A condition that triggers again after its ticket was resolved or closed opens a new ticket that names the previous
one: the resolved ticket's history and SLA record stay as they were, and the new problem gets its own clocks.

Out of order: a RESET that arrives before its TRIGGERED is remembered, so the late TRIGGERED opens nothing; a RESET
older than the alert's latest trigger, or a TRIGGERED older than its reset, is ignored.

All of this happens in one transaction holding the organization's ``NinjaOneSettings`` row, so two deliveries at the
same moment are applied one after the other; the unique activity id and the unique alert per organization are the
last guard. Emails and webhooks about the ticket leave after the commit (``tickets.services``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.ninjaone.activities import Activity, ActivityError, activity_parse
from integrations.ninjaone.base import NODE_CLASSES
from integrations.ninjaone.models import Alert, AlertState, Device, NinjaOneSettings, Outcome, WebhookEvent
from integrations.ninjaone.services import settings_for, settings_locked
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization
from tenancy.text import unstorable
from tickets.models import OPEN_STATUSES, Channel, Priority, Ticket, TicketStatus
from tickets.services import comment_add, ticket_create, ticket_set_priority, ticket_set_status

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_MERGE_HOPS = 10
CATEGORY = "Monitoring"


@dataclass(frozen=True)
class Receipt:
    """What became of one delivery: ``outcome`` is an ``Outcome`` value, ``ticket`` the ticket's reference."""

    activity_id: str
    outcome: str
    detail: str
    duplicate: bool = False
    ticket: str = ""

    @property
    def ignored(self) -> bool:
        return self.outcome == Outcome.IGNORED


def activity_receive(*, body: bytes, now: datetime | None = None) -> Receipt:
    """Read one webhook body and apply it. Raises ServiceValidationError naming the field for a body that is not a
    NinjaOne activity (nothing is stored then)."""
    if len(body) > MAX_BODY_BYTES:
        raise ServiceValidationError({"body": [f"Larger than {MAX_BODY_BYTES // 1024} KB."]})
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep to decode
        raise ServiceValidationError({"body": ["The body is not JSON."]}) from None
    if unstorable(data):
        raise ServiceValidationError(
            {"body": ["Contains a NUL or an unpaired surrogate character, which no NinjaOne text has."]}
        )
    try:
        activity = activity_parse(data)
    except ActivityError as bad:
        raise ServiceValidationError(bad.errors) from None
    return activity_apply(activity=activity, payload=data, now=now)


def activity_apply(*, activity: Activity, payload: dict[str, Any], now: datetime | None = None) -> Receipt:
    now = now or timezone.now()
    if not activity.is_condition:
        detail = f"{activity.activity_type} activities are not handled; Keel acts on CONDITION activities."
        logger.info("ninjaone activity %s ignored: %s", activity.activity_id, detail)
        return Receipt(activity.activity_id, Outcome.IGNORED, detail)
    organization, problem = _organization(activity.organization_id)
    if organization is None:
        logger.warning("ninjaone activity %s ignored: %s", activity.activity_id, problem)
        return _record_unlinked(activity, payload, problem)
    settings_for(organization)  # committed before the transaction that locks it
    with transaction.atomic():
        settings_row = settings_locked(organization)
        try:
            with transaction.atomic():
                event = WebhookEvent.objects.create(
                    provider_event_id=activity.activity_id,
                    organization=organization,
                    ninjaone_org_id=activity.organization_id,
                    status=activity.status,
                    outcome=Outcome.IGNORED,
                    payload=payload,
                    received_at=now,
                )
        except IntegrityError:
            return _repeat(activity)
        if activity.is_trigger:
            outcome, detail, alert = _trigger(organization, settings_row, activity, payload, now)
        elif activity.is_reset:
            outcome, detail, alert = _reset(organization, settings_row, activity, payload, now)
        else:
            outcome, detail, alert = Outcome.IGNORED, f"Condition status {activity.status} is not handled.", None
        event.outcome, event.detail, event.alert = outcome, detail[:300], alert
        event.save(update_fields=["outcome", "detail", "alert"])
    ticket = alert.ticket.reference if alert is not None and alert.ticket is not None else ""
    logger.info("ninjaone activity %s for %s: %s %s", activity.activity_id, organization.slug, outcome, detail)
    return Receipt(activity.activity_id, outcome, detail, ticket=ticket)


def _organization(ninjaone_org_id: str) -> tuple[Organization | None, str]:
    linked = list(Organization.objects.filter(ninjaone_org_id=ninjaone_org_id)[:2])
    if not linked:
        return None, f"No organization is linked to NinjaOne organization {ninjaone_org_id}."
    if len(linked) > 1:
        return None, f"More than one organization is linked to NinjaOne organization {ninjaone_org_id}."
    return linked[0], ""


def _record_unlinked(activity: Activity, payload: dict[str, Any], problem: str) -> Receipt:
    """Kept (once) for staff to see, with no organization: nothing else happens."""
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                provider_event_id=activity.activity_id,
                ninjaone_org_id=activity.organization_id,
                status=activity.status,
                outcome=Outcome.IGNORED,
                detail=problem[:300],
                payload=payload,
            )
    except IntegrityError:
        return Receipt(activity.activity_id, Outcome.IGNORED, problem, duplicate=True)
    return Receipt(activity.activity_id, Outcome.IGNORED, problem)


def _repeat(activity: Activity) -> Receipt:
    first = WebhookEvent.objects.filter(provider_event_id=activity.activity_id).first()
    outcome = first.outcome if first is not None else Outcome.IGNORED
    return Receipt(activity.activity_id, outcome, "Already received: nothing changed.", duplicate=True)


# -- TRIGGERED ------------------------------------------------------------------------------------------------------


def _live(ticket: Ticket | None) -> Ticket | None:
    """The ticket work continues on: a merged ticket's target."""
    for _ in range(MAX_MERGE_HOPS):
        if ticket is None or ticket.merged_into_id is None:
            return ticket
        ticket = Ticket.objects.for_org(ticket.organization_id).filter(pk=ticket.merged_into_id).first()
    return ticket


def _open_ticket_of_condition(organization: Organization, activity: Activity, alert: Alert | None) -> Ticket | None:
    """The open ticket of this alert, or of another alert of the same condition on the same device."""
    own = _live(alert.ticket) if alert is not None else None
    if own is not None and own.is_open:
        return own
    if not activity.condition_uid:
        return None
    siblings = (
        Alert.objects.for_org(organization)
        .filter(device_id=activity.device_id, condition_uid=activity.condition_uid, ticket__isnull=False)
        .exclude(uid=activity.alert_uid)
        .select_related("ticket")
        .order_by("-triggered_at", "-id")
    )
    open_sibling = siblings.filter(ticket__status__in=OPEN_STATUSES).first()
    if open_sibling is not None:
        return open_sibling.ticket
    # A ticket merged into another is closed; the one it was merged into may still be open.
    for sibling in siblings.filter(ticket__merged_into__isnull=False)[:MAX_MERGE_HOPS]:
        ticket = _live(sibling.ticket)
        if ticket is not None and ticket.is_open:
            return ticket
    return None


def _trigger(
    organization: Organization,
    settings_row: NinjaOneSettings,
    activity: Activity,
    payload: dict[str, Any],
    now: datetime,
) -> tuple[str, str, Alert | None]:
    occurred = activity.occurred_at or now
    alert = Alert.objects.for_org(organization).select_related("ticket").filter(uid=activity.alert_uid).first()
    if alert is not None and alert.state == AlertState.OPEN:
        where = f" on {alert.ticket.reference}" if alert.ticket is not None else ""
        return Outcome.JOINED, f"This alert is already active{where}.", alert
    if alert is not None and alert.reset_at is not None and occurred <= alert.reset_at:
        return Outcome.IGNORED, "Older than the reset already received for this alert.", alert

    previous = _live(alert.ticket) if alert is not None else None
    ticket = _open_ticket_of_condition(organization, activity, alert)
    if ticket is not None:
        comment_add(ticket=ticket, body=_trigger_note(organization, activity, occurred), by_staff=True,
                    internal=True, channel=Channel.NINJAONE, now=now)  # fmt: skip
        if _more_urgent(activity.priority, ticket.priority):
            ticket = ticket_set_priority(ticket=ticket, priority=activity.priority, now=now)
        outcome, detail = Outcome.JOINED, f"Noted on {ticket.reference}, still open for this condition."
    else:
        ticket = ticket_create(
            organization=organization,
            subject=_subject(organization, activity),
            description=_description(organization, activity, occurred, previous, settings_row.resolve_on_reset),
            priority=activity.priority,
            channel=Channel.NINJAONE,
            category=CATEGORY,
            tags=["ninjaone", f"severity-{(activity.severity or 'unknown').lower()}"[:40]],
            now=now,
        )
        outcome, detail = Outcome.OPENED, f"Opened {ticket.reference} ({activity.priority})."
    if alert is None:
        alert = Alert(organization=organization, uid=activity.alert_uid)
    _describe(alert, organization, activity, payload)
    alert.state, alert.ticket, alert.triggered_at, alert.reset_at = AlertState.OPEN, ticket, occurred, None
    alert.save()
    return outcome, detail, alert


def _more_urgent(priority: str, than: str) -> bool:
    order = list(Priority.values)  # P1 first
    return priority in order and than in order and order.index(priority) < order.index(than)


# -- RESET ----------------------------------------------------------------------------------------------------------


def _reset(
    organization: Organization,
    settings_row: NinjaOneSettings,
    activity: Activity,
    payload: dict[str, Any],
    now: datetime,
) -> tuple[str, str, Alert | None]:
    occurred = activity.occurred_at or now
    alert = Alert.objects.for_org(organization).select_related("ticket").filter(uid=activity.alert_uid).first()
    if alert is None:
        alert = Alert(organization=organization, uid=activity.alert_uid, state=AlertState.RESET, reset_at=occurred)
        _describe(alert, organization, activity, payload)
        alert.save()
        return Outcome.IGNORED, "Reset of an alert not seen triggering; remembered so its trigger opens nothing.", alert
    if alert.state == AlertState.RESET:
        return Outcome.IGNORED, "This alert was already reset.", alert
    if alert.triggered_at is not None and occurred < alert.triggered_at:
        return Outcome.IGNORED, "Older than the alert's latest trigger.", alert
    alert.state, alert.reset_at, alert.payload = AlertState.RESET, occurred, payload
    alert.save(update_fields=["state", "reset_at", "payload", "updated_at"])

    ticket = _live(alert.ticket)
    if ticket is None:
        return Outcome.IGNORED, "The alert's ticket no longer exists.", alert
    note = comment_add(ticket=ticket, body=_reset_note(organization, activity, occurred), by_staff=True,
                       internal=True, channel=Channel.NINJAONE, now=now)  # fmt: skip
    ticket = note.ticket
    if not ticket.is_open:
        return Outcome.COMMENTED, f"Noted on {ticket.reference}, already {ticket.get_status_display().lower()}.", alert
    if not settings_row.resolve_on_reset:
        return Outcome.COMMENTED, f"Noted on {ticket.reference}; resolving is left to a technician.", alert
    if Alert.objects.for_org(organization).filter(ticket=ticket, state=AlertState.OPEN).exists():
        return Outcome.COMMENTED, f"Noted on {ticket.reference}; another alert on it is still active.", alert
    ticket_set_status(ticket=ticket, status=TicketStatus.RESOLVED, now=now)
    return Outcome.RESOLVED, f"Resolved {ticket.reference}.", alert


# -- what the ticket says -------------------------------------------------------------------------------------------


def _describe(alert: Alert, organization: Organization, activity: Activity, payload: dict[str, Any]) -> None:
    alert.device_id = activity.device_id
    alert.device_name = _device_name(organization, activity)[:200]
    alert.condition_uid = activity.condition_uid
    alert.condition_name = activity.condition_name
    alert.severity = activity.severity
    alert.message = activity.message
    alert.payload = payload


def _synced_device(organization: Organization, activity: Activity) -> Device | None:
    return Device.objects.for_org(organization).filter(ninja_id=activity.device_id).first()


def _device_name(organization: Organization, activity: Activity) -> str:
    if activity.device_name:
        return activity.device_name
    device = _synced_device(organization, activity)
    return device.name if device is not None else f"device {activity.device_id}"


def _local(organization: Organization, moment: datetime) -> str:
    local = timezone.localtime(moment, ZoneInfo(organization.timezone))
    return f"{local:%-d %b %Y, %H:%M} {local.tzname()} ({organization.timezone})"


def device_url(device_id: str) -> str:
    """The device's page in NinjaOne's console."""
    return f"{settings.NINJAONE_BASE_URL.rstrip('/')}/#/deviceDashboard/{device_id}/overview"


def _subject(organization: Organization, activity: Activity) -> str:
    what = activity.condition_name or activity.message or "Alert"
    return f"NinjaOne: {what} on {_device_name(organization, activity)}"[:200]


def _description(
    organization: Organization, activity: Activity, occurred: datetime, previous: Ticket | None, resolves: bool
) -> str:
    device = _synced_device(organization, activity)
    name = _device_name(organization, activity)
    kind = NODE_CLASSES.get(activity.node_class or (device.node_class if device else ""), "")
    lines = [
        f"NinjaOne raised an alert on {name}.",
        "",
        f"Alert: {activity.message or activity.condition_name or 'no message'}",
        f"Condition: {activity.condition_name or 'not named'}",
        f"Severity: {activity.severity_label} (ticket priority {activity.priority})",
        f"Device: {name}" + (f" ({kind})" if kind else "") + f", NinjaOne device {activity.device_id}",
    ]
    if device is not None and device.os_name:
        lines.append(f"Operating system: {device.os_name}")
    lines += [
        f"Triggered: {_local(organization, occurred)}",
        f"Device in NinjaOne: {device_url(activity.device_id)}",
        f"NinjaOne alert: {activity.alert_uid}",
    ]
    if previous is not None:
        lines.append(f"Previous ticket for this alert: {previous.reference} ({previous.get_status_display()})")
    lines += [
        "",
        "Keel adds a note here when NinjaOne resets the alert"
        + (", and resolves this ticket then." if resolves else "; a technician resolves this ticket."),
    ]
    return "\n".join(lines)


def _trigger_note(organization: Organization, activity: Activity, occurred: datetime) -> str:
    return (
        f"NinjaOne alert triggered again on {_device_name(organization, activity)} at {_local(organization, occurred)}"
        f": {activity.message or activity.condition_name or 'no message'} "
        f"(severity {activity.severity_label}; NinjaOne alert {activity.alert_uid})."
    )


def _reset_note(organization: Organization, activity: Activity, occurred: datetime) -> str:
    return (
        f"NinjaOne reset the alert on {_device_name(organization, activity)} at {_local(organization, occurred)}"
        f": {activity.message or activity.condition_name or 'condition cleared'} (NinjaOne alert {activity.alert_uid})."
    )
