"""Every write to tickets. Each service is one transaction; emails and events go out after it commits.

The SLA clocks are re-read (``clocks.clocks_refresh``) by every service that changes what they depend on: status
(pauses, resolving, reopening), priority (targets recomputed from the ticket's start, paused time kept) and the
first public staff reply (stops the first-response clock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from events.services import publish
from notifications.services import is_email_address, notify
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization, User
from tickets import routing, workflows
from tickets.attachments import attachment_refusal, declared_type
from tickets.clocks import SLA_FIELDS, clocks_refresh, pause_close, pause_open, targets_apply
from tickets.models import (
    DONE_STATUSES,
    PAUSED_STATUSES,
    Attachment,
    Channel,
    Comment,
    Priority,
    SatisfactionResponse,
    Technician,
    Ticket,
    TicketActivity,
    TicketCounter,
    TicketStatus,
    TimeEntry,
    WorkflowTrigger,
)

MAX_TAGS = 20
MAX_BODY = 100_000


def clean_list(value: Any, field: str, errors: dict[str, list[str]]) -> list[str]:
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
    skills = clean_list(required_skills, "required_skills", errors)
    tag_list = clean_list(tags, "tags", errors)
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
        if routing.auto_routing_on(ticket):
            _route(ticket, now)
        publish(organization, "ticket.created", _payload(ticket, subject=ticket.subject, channel=channel))
        workflows.run_workflows(ticket, WorkflowTrigger.TICKET_CREATED, actor=actor or requester)
    return ticket


def _route(ticket: Ticket, now: datetime) -> bool:
    """Assign the locked (or new) ticket by the routing rules, or leave it queued and tell the managers.
    Returns whether it was assigned."""
    technician, reason = routing.choose(ticket, now)
    ticket.routing_reason = reason
    if technician is None:
        ticket.save(update_fields=["routing_reason", "updated_at"])
        _log(ticket, "routing", reason)
        routing.managers_told_unrouted(ticket, reason, now)
        return False
    Technician.objects.filter(pk=technician.pk).update(last_assigned_at=now)
    ticket.assignee = technician.user
    ticket.save(update_fields=["assignee", "routing_reason", "updated_at"])
    _log(ticket, "routing", reason, assignee=str(technician.user_id))
    return True


def ticket_route(*, ticket: Ticket, now: datetime | None = None) -> Ticket:
    """Route an unassigned ticket (a no-op for an assigned one)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(ticket)
        if locked.assignee_id is None and locked.is_open and _route(locked, now):
            publish(locked.organization, "ticket.updated", _payload(locked, changed=["assignee"]))
    return locked


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
        workflows.run_workflows(locked, WorkflowTrigger.TICKET_UPDATED, changes=["status"], actor=actor)
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
        workflows.run_workflows(locked, WorkflowTrigger.TICKET_UPDATED, changes=["priority"], actor=actor)
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
    ticket); a customer's reply to a ticket waiting on them, or to a resolved one, reopens it; a public staff reply
    emails the requester."""
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
        if locked.merged_into_id is not None:
            raise ConflictError("This ticket was merged into another; reply there.", field="body")
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
        if by_staff and not internal and is_email_address(locked.requester_email):
            # The reply is the conversation itself: the requester's address gets it, member or not, whatever they
            # chose for ticket notifications.
            notify(
                organization=locked.organization,
                event_type="ticket.replied",
                addresses=[locked.requester_email],
                template="ticket_reply",
                key=f"comment:{comment.pk}",
                context={
                    "reference": locked.reference,
                    "subject": locked.subject,
                    "body": body,
                    "author": author.get_short_name() if author else "Support",
                    "path": f"/support/tickets/{locked.number}/",
                },
            )
        if not by_staff and locked.status == TicketStatus.RESOLVED:
            # The customer is not done: their reply reopens the ticket and the resolution clock resumes.
            comment.ticket = ticket_set_status(ticket=locked, status=TicketStatus.OPEN, actor=author, now=now)
            locked = comment.ticket
        workflows.run_workflows(locked, WorkflowTrigger.COMMENT_ADDED, changes=["comments"], actor=author)
    return comment


# -- assignment, edits, time, attachments, merging, satisfaction ---------------------------------------------------

EDITABLE_FIELDS = ("subject", "description", "category", "tags", "required_skills")


def ticket_assign(*, ticket: Ticket, assignee: User | None, actor: User | None = None, reason: str = "") -> Ticket:
    """Assign (or unassign with None) by hand. Only staff can hold tickets."""
    if assignee is not None and not assignee.is_staff:
        raise ServiceValidationError({"assignee": ["Only staff members can be assigned tickets."]})
    with transaction.atomic():
        locked = _locked(ticket)
        if locked.assignee_id == (assignee.pk if assignee else None):
            return locked
        locked.assignee = assignee
        locked.routing_reason = reason[:300] or (f"Assigned by {actor}" if actor else "")
        locked.save(update_fields=["assignee", "routing_reason", "updated_at"])
        who = assignee.email if assignee else "nobody"
        _log(locked, "assigned", f"Assigned to {who}" + (f": {reason}" if reason else ""), actor)
        if assignee is None and locked.is_open and routing.auto_routing_on(locked):
            _route(locked, timezone.now())  # unassigned: the routing rules pick again
        publish(locked.organization, "ticket.updated", _payload(locked, changed=["assignee"]))
        workflows.run_workflows(locked, WorkflowTrigger.TICKET_UPDATED, changes=["assignee"], actor=actor)
    return locked


def ticket_update(*, ticket: Ticket, actor: User | None = None, **fields: Any) -> Ticket:
    """Edit the subject, description, category, tags or required skills."""
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise ServiceValidationError({name: ["This field cannot be changed here."] for name in unknown})
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    if "subject" in fields:
        clean["subject"] = str(fields["subject"] or "").strip()
        if not clean["subject"] or len(clean["subject"]) > 200:
            errors["subject"] = ["A subject of 1 to 200 characters is required."]
    if "description" in fields:
        clean["description"] = str(fields["description"] or "")
        if len(clean["description"]) > MAX_BODY:
            errors["description"] = [f"At most {MAX_BODY} characters."]
    if "category" in fields:
        clean["category"] = str(fields["category"] or "").strip()
        if len(clean["category"]) > 60:
            errors["category"] = ["At most 60 characters."]
    for name in ("tags", "required_skills"):
        if name in fields:
            clean[name] = clean_list(fields[name], name, errors)
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        locked = _locked(ticket)
        changed = [name for name, value in clean.items() if getattr(locked, name) != value]
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, clean[name])
        locked.save(update_fields=[*changed, "updated_at"])
        _log(locked, "updated", f"Changed {', '.join(changed)}", actor, changed=changed)
        publish(locked.organization, "ticket.updated", _payload(locked, changed=changed))
        workflows.run_workflows(locked, WorkflowTrigger.TICKET_UPDATED, changes=changed, actor=actor)
    return locked


def time_entry_add(
    *, ticket: Ticket, technician: User, minutes: int, billable: bool = True, note: str = "", worked_on: Any = None
) -> TimeEntry:
    errors: dict[str, list[str]] = {}
    if not technician.is_staff:
        errors["technician"] = ["Only staff log time."]
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        errors["minutes"] = ["Whole minutes from 1 to 1440."]
    if len(note or "") > 300:
        errors["note"] = ["At most 300 characters."]
    if errors:
        raise ServiceValidationError(errors)
    with transaction.atomic():
        locked = _locked(ticket)
        entry = TimeEntry.objects.create(
            organization_id=locked.organization_id,
            ticket=locked,
            technician=technician,
            minutes=minutes,
            billable=billable,
            note=note or "",
            worked_on=worked_on or timezone.localdate(timezone=ZoneInfo(locked.organization.timezone)),
        )
        publish(locked.organization, "ticket.updated", _payload(locked, changed=["time_entries"], minutes=minutes))
    return entry


def attachment_add(*, ticket: Ticket, upload: Any, comment: Comment | None = None) -> Attachment:
    """Keep an uploaded file with the ticket (and its comment) unless ``attachment_refusal`` finds fault with it."""
    if comment is not None and comment.ticket_id != ticket.pk:
        raise ServiceValidationError({"comment": ["That comment is on another ticket."]})
    if refusal := attachment_refusal(upload):
        raise ServiceValidationError({"attachments": [refusal]})
    return Attachment.objects.create(
        organization_id=ticket.organization_id,
        ticket=ticket,
        comment=comment,
        file=upload,
        filename=str(upload.name)[-200:],
        content_type=declared_type(upload),
        size=upload.size,
    )


def ticket_merge(*, ticket: Ticket, into: Ticket, actor: User | None = None) -> Ticket:
    """Merge a duplicate into another ticket of the same organization: its comments move, it is closed, and its
    requester is told where the conversation continues."""
    if ticket.organization_id != into.organization_id:
        raise ServiceValidationError({"into": ["Tickets can only be merged within one organization."]})
    if ticket.pk == into.pk:
        raise ServiceValidationError({"into": ["A ticket cannot be merged into itself."]})
    now = timezone.now()
    with transaction.atomic():
        # Both rows locked in one query, in primary-key order, so two opposite merges cannot deadlock.
        rows = Ticket.objects.select_for_update().select_related("organization").filter(pk__in=[ticket.pk, into.pk])
        locked = {row.pk: row for row in rows.order_by("pk")}
        duplicate, target = locked[ticket.pk], locked[into.pk]
        if duplicate.merged_into_id is not None or target.merged_into_id is not None:
            raise ConflictError("One of these tickets was already merged.", field="into")
        Comment.objects.for_org(duplicate.organization_id).filter(ticket=duplicate).update(ticket=target)
        Attachment.objects.for_org(duplicate.organization_id).filter(ticket=duplicate).update(ticket=target)
        duplicate.merged_into = target
        duplicate.status = TicketStatus.CLOSED
        duplicate.resolved_at = duplicate.resolved_at or now
        duplicate.closed_at = now
        clocks_refresh(duplicate, now)
        duplicate.save(update_fields=["merged_into", "status", "resolved_at", "closed_at", *SLA_FIELDS, "updated_at"])
        _log(duplicate, "merged", f"Merged into {target.reference}", actor, into=str(target.pk))
        _log(target, "merged", f"{duplicate.reference} merged into this ticket", actor, merged=str(duplicate.pk))
        publish(duplicate.organization, "ticket.closed", _payload(duplicate, merged_into=target.pk))
        if is_email_address(duplicate.requester_email):
            notify(
                organization=duplicate.organization,
                event_type="ticket.merged",
                addresses=[duplicate.requester_email],
                template="ticket_merged",
                key=f"ticket:{duplicate.pk}:merged",
                context={
                    "reference": duplicate.reference,
                    "subject": duplicate.subject,
                    "into_reference": target.reference,
                    "into_subject": target.subject,
                    "path": f"/support/tickets/{target.number}/",
                },
            )
    return target


def satisfaction_record(*, ticket: Ticket, rating: Any, comment: str = "") -> SatisfactionResponse:
    """The requester's rating (1 to 5) of a resolved ticket; once per ticket."""
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ServiceValidationError({"rating": ["Choose a rating from 1 to 5."]})
    if len(comment or "") > 2000:
        raise ServiceValidationError({"comment": ["At most 2000 characters."]})
    if ticket.status not in DONE_STATUSES:
        raise ConflictError("You can rate a ticket once it is resolved.", field="rating")
    with transaction.atomic():
        response, created = SatisfactionResponse.objects.get_or_create(
            ticket=ticket,
            defaults={
                "organization_id": ticket.organization_id,
                "technician_id": ticket.assignee_id,
                "rating": rating,
                "comment": comment or "",
            },
        )
        if not created:
            raise ConflictError("This ticket has already been rated.", field="rating")
    return response
