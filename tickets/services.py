"""Every write to tickets. Each service is one transaction; emails and events go out after it commits.

The SLA clocks are re-read (``clocks.clocks_refresh``) by every service that changes what they depend on: status
(pauses, resolving, reopening), priority (targets recomputed from the ticket's start, paused time kept) and the
first public staff reply (stops the first-response clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from events.services import publish
from tenancy.emails import email_send
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User
from tickets.clocks import SLA_FIELDS, clocks_refresh, pause_close, pause_open, targets_apply
from tickets.models import (
    DONE_STATUSES,
    PAUSED_STATUSES,
    Channel,
    Comment,
    Priority,
    Ticket,
    TicketActivity,
    TicketCounter,
    TicketStatus,
)

MAX_TAGS = 20
MAX_BODY = 100_000


def _clean_list(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        errors[field] = ["Must be a list of words."]
        return []
    cleaned = sorted({item.strip().lower() for item in value if item.strip()})
    if len(cleaned) > MAX_TAGS or any(len(item) > 40 for item in cleaned):
        errors[field] = [f"At most {MAX_TAGS} entries of up to 40 characters."]
    return cleaned


def _payload(ticket: Ticket, **extra: Any) -> dict[str, Any]:
    return {
        "id": ticket.id,
        "number": ticket.reference,
        "status": ticket.status,
        "priority": ticket.priority,
        "assignee": ticket.assignee_id,
        **extra,
    }


def _log(ticket: Ticket, kind: str, message: str, actor: User | None = None, **data: Any) -> None:
    TicketActivity.objects.create(
        organization_id=ticket.organization_id, ticket=ticket, kind=kind, message=message[:500], actor=actor, data=data
    )


def _next_number(organization: Organization) -> int:
    TicketCounter.objects.get_or_create(organization=organization)
    counter = TicketCounter.objects.select_for_update().get(organization=organization)
    counter.last_number += 1
    counter.save(update_fields=["last_number"])
    return counter.last_number


def ticket_create(
    *,
    organization: Organization,
    subject: str,
    description: str = "",
    requester: User | None = None,
    requester_email: str = "",
    priority: str = Priority.P3,
    channel: str = Channel.PORTAL,
    category: str = "",
    required_skills: list[str] | None = None,
    tags: list[str] | None = None,
    actor: User | None = None,
    now: datetime | None = None,
) -> Ticket:
    errors: dict[str, list[str]] = {}
    subject = (subject or "").strip()
    if not subject:
        errors["subject"] = ["A subject is required."]
    elif len(subject) > 200:
        errors["subject"] = ["At most 200 characters."]
    if len(description or "") > MAX_BODY:
        errors["description"] = [f"At most {MAX_BODY} characters."]
    if priority not in Priority.values:
        errors["priority"] = [f"Priority must be one of {', '.join(Priority.values)}."]
    if channel not in Channel.values:
        errors["channel"] = [f"Channel must be one of {', '.join(Channel.values)}."]
    if len(category or "") > 60:
        errors["category"] = ["At most 60 characters."]
    skills = _clean_list(required_skills, "required_skills", errors)
    tag_list = _clean_list(tags, "tags", errors)
    if errors:
        raise ServiceValidationError(errors)
    now = now or timezone.now()
    with transaction.atomic():
        ticket = Ticket(
            organization=organization,
            number=_next_number(organization),
            subject=subject,
            description=description or "",
            requester=requester,
            requester_email=requester_email or (requester.email if requester else ""),
            priority=priority,
            channel=channel,
            category=(category or "").strip(),
            required_skills=skills,
            tags=tag_list,
            sla_started_at=now,
            created_at=now,
        )
        targets_apply(ticket)
        clocks_refresh(ticket, now)
        ticket.save()
        _log(ticket, "created", f"Opened via {ticket.get_channel_display()}", actor or requester)
        publish(organization, "ticket.created", _payload(ticket, subject=ticket.subject, channel=channel))
    return ticket


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().select_related("organization").get(pk=ticket.pk)


def ticket_set_status(*, ticket: Ticket, status: str, actor: User | None = None, now: datetime | None = None) -> Ticket:
    """Move the ticket; the resolution clock pauses in PENDING_CUSTOMER / ON_HOLD, stops on RESOLVED and resumes
    when a resolved ticket is reopened (the time it spent resolved does not count)."""
    if status not in TicketStatus.values:
        raise ServiceValidationError({"status": [f"Status must be one of {', '.join(TicketStatus.values)}."]})
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        before = locked.status
        if before == status:
            return locked
        if locked.merged_into_id is not None:
            raise ConflictError("This ticket was merged into another; work on that one.", field="status")
        if before in PAUSED_STATUSES:
            pause_close(locked, now)
        if before in DONE_STATUSES and status not in DONE_STATUSES:
            # Reopened: the time it spent resolved is a pause of the resolution clock.
            resolved = locked.resolved_at or now
            locked.sla_pauses = [*locked.sla_pauses, [resolved.isoformat(), now.isoformat()]]
            locked.resolved_at = None
            locked.closed_at = None
        if status in PAUSED_STATUSES:
            pause_open(locked, now)
        if status == TicketStatus.RESOLVED or (status == TicketStatus.CLOSED and locked.resolved_at is None):
            locked.resolved_at = now
        if status == TicketStatus.CLOSED:
            locked.closed_at = now
        locked.status = status
        clocks_refresh(locked, now)
        locked.save(update_fields=["status", "sla_pauses", "resolved_at", "closed_at", *SLA_FIELDS, "updated_at"])
        _log(locked, "status", f"{TicketStatus(before).label} to {TicketStatus(status).label}", actor,
             before=before, after=status)  # fmt: skip
        event = {TicketStatus.RESOLVED: "ticket.resolved", TicketStatus.CLOSED: "ticket.closed"}.get(
            TicketStatus(status), "ticket.updated"
        )
        publish(locked.organization, event, _payload(locked, changed=["status"], previous_status=before))
    return locked


def ticket_set_priority(
    *, ticket: Ticket, priority: str, actor: User | None = None, now: datetime | None = None
) -> Ticket:
    """Change priority: the targets of the new priority apply from the ticket's start, paused time still excluded."""
    if priority not in Priority.values:
        raise ServiceValidationError({"priority": [f"Priority must be one of {', '.join(Priority.values)}."]})
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        before = locked.priority
        if before == priority:
            return locked
        locked.priority = priority
        targets_apply(locked)
        clocks_refresh(locked, now)
        locked.save(
            update_fields=[
                "priority",
                "sla_policy",
                "sla_calendar",
                "sla_always_on",
                "first_response_target",
                "resolution_target",
                "at_risk_ratio",
                *SLA_FIELDS,
                "updated_at",
            ]
        )
        _log(locked, "priority", f"Priority {before} to {priority}", actor, before=before, after=priority)
        publish(locked.organization, "ticket.updated", _payload(locked, changed=["priority"], previous_priority=before))
    return locked


def comment_add(
    *,
    ticket: Ticket,
    body: str,
    author: User | None = None,
    author_email: str = "",
    internal: bool = False,
    by_staff: bool = False,
    channel: str = Channel.PORTAL,
    message_id: str = "",
    now: datetime | None = None,
) -> Comment:
    """A reply or an internal note. The first public staff reply stops the first-response clock (and opens a NEW
    ticket); a customer's reply to a ticket waiting on them reopens it; a public staff reply emails the requester."""
    body = (body or "").strip()
    if not body:
        raise ServiceValidationError({"body": ["Write something."]})
    if len(body) > MAX_BODY:
        raise ServiceValidationError({"body": [f"At most {MAX_BODY} characters."]})
    if internal and not by_staff:
        raise ServiceValidationError({"internal": ["Only staff write internal notes."]})
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        comment = Comment.objects.create(
            organization_id=locked.organization_id,
            ticket=locked,
            author=author,
            author_email=author_email or (author.email if author else ""),
            body=body,
            internal=internal,
            by_staff=by_staff,
            channel=channel,
            message_id=message_id[:300],
            created_at=now,
        )
        fields: list[str] = []
        if by_staff and not internal and locked.first_responded_at is None:
            locked.first_responded_at = now
            fields.append("first_responded_at")
        if by_staff and not internal and locked.status == TicketStatus.NEW:
            locked.status = TicketStatus.OPEN
            fields.append("status")
        if not by_staff and locked.status == TicketStatus.PENDING_CUSTOMER:
            pause_close(locked, now)
            locked.status = TicketStatus.OPEN
            fields += ["status", "sla_pauses"]
        if fields:
            clocks_refresh(locked, now)
            locked.save(update_fields=[*fields, *SLA_FIELDS, "updated_at"])
        publish(locked.organization, "ticket.updated",
                _payload(locked, changed=["comments"], comment=comment.pk, internal=internal))  # fmt: skip
        if by_staff and not internal and locked.requester_email:
            email_send(
                to=locked.requester_email,
                template="ticket_reply",
                organization=locked.organization,
                context={
                    "reference": locked.reference,
                    "subject": locked.subject,
                    "body": body,
                    "author": author.get_short_name() if author else "Support",
                    "path": f"/support/tickets/{locked.number}/",
                },
            )
    return comment
