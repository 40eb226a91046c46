"""The service desk: tickets with their conversation, time and SLA clocks; calendars and SLA policies; the
technicians tickets are routed to.

SLA fields on a ticket are a denormalised reading of its clocks (``tickets.sla``), refreshed by every service that
changes the ticket and by the breach check. ``sla_next_check_at`` is the next instant a clock changes state by
itself (at risk, breached, the next escalation). Saving it also files it in ``SlaCheck``, the breach check's queue,
so the check reads only the tickets whose time has come.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from tenancy.models import Organization, TenantModel, Tier
from tenancy.recordset import recordset
from tickets import sla


class TicketStatus(models.TextChoices):
    NEW = "NEW", "New"
    OPEN = "OPEN", "Open"
    PENDING_CUSTOMER = "PENDING_CUSTOMER", "Waiting on customer"
    ON_HOLD = "ON_HOLD", "On hold"
    RESOLVED = "RESOLVED", "Resolved"
    CLOSED = "CLOSED", "Closed"


# The resolution clock does not run in these.
PAUSED_STATUSES = frozenset({TicketStatus.PENDING_CUSTOMER, TicketStatus.ON_HOLD})
DONE_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
OPEN_STATUSES = frozenset(TicketStatus.values) - DONE_STATUSES


class Priority(models.TextChoices):
    P1 = "P1", "P1 critical"
    P2 = "P2", "P2 high"
    P3 = "P3", "P3 medium"
    P4 = "P4", "P4 low"


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal"
    EMAIL = "email", "Email"
    API = "api", "API"
    PHONE = "phone", "Phone"
    NINJAONE = "ninjaone", "NinjaOne"


class ClockState(models.TextChoices):
    OK = "ok", "On track"
    AT_RISK = "at_risk", "At risk"
    BREACHED = "breached", "Breached"
    PAUSED = "paused", "Paused"
    MET = "met", "Met"


def _business_week() -> list[list[int]]:
    return [[day, 8 * 60, 18 * 60] for day in range(5)]


class BusinessCalendar(models.Model):
    """Working hours and holidays in a timezone. Platform-wide (no organization) or an organization's own."""

    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="business_calendars"
    )
    name = models.CharField(max_length=100)
    timezone = models.CharField(max_length=64, default="Australia/Sydney")
    always_open = models.BooleanField(default=False, help_text="24x7: hours and holidays are ignored.")
    # [[weekday 0=Monday, start minute, end minute], ...] in local time.
    hours = models.JSONField(default=_business_week, blank=True)
    # ["YYYY-MM-DD", ...] local days off.
    holidays = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        SlaCheck.recheck(Ticket.objects.filter(sla_calendar=self))  # their instants were read on the old hours

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        SlaCheck.recheck(Ticket.objects.filter(sla_calendar=self))
        return super().delete(*args, **kwargs)

    def as_calendar(self, *, always_open: bool = False) -> sla.Calendar:
        if always_open or self.always_open:
            return sla.Calendar.always(self.timezone)
        return sla.Calendar(
            timezone=self.timezone,
            hours=tuple((int(day), int(start), int(end)) for day, start, end in self.hours),
            holidays=frozenset(date.fromisoformat(day) for day in self.holidays),
        )


class SlaPolicy(models.Model):
    """Targets per priority for a tier (platform default) or for one organization (its override)."""

    name = models.CharField(max_length=100)
    tier = models.CharField(max_length=16, choices=Tier.choices, blank=True)
    organization = models.OneToOneField(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="sla_policy"
    )
    calendar = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                 help_text="Empty: the organization's own business calendar.")  # fmt: skip
    # {"P1": {"first_response": minutes, "resolution": minutes, "always_on": bool}, ...}
    targets = models.JSONField()
    at_risk_ratio = models.DecimalField(
        max_digits=3, decimal_places=2, default=0.80, validators=[MinValueValidator(0.1), MaxValueValidator(0.99)]
    )
    active = models.BooleanField(default=True)

    class Meta:
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["tier"], condition=Q(organization=None), name="sla_policy_one_per_tier"),
            models.CheckConstraint(condition=~Q(tier="") | Q(organization__isnull=False), name="sla_policy_scope"),
        ]

    def __str__(self) -> str:
        return self.name

    def target(self, priority: str) -> sla.Target:
        row: dict[str, Any] = self.targets[priority]
        return sla.Target(
            first_response=timedelta(minutes=row["first_response"]),
            resolution=timedelta(minutes=row["resolution"]),
            always_on=bool(row.get("always_on")),
        )


class Technician(models.Model):
    """A staff member tickets can be routed to: skills, shift (a calendar) and routing bookkeeping."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="technician")
    skills = models.JSONField(default=list, blank=True)
    shift = models.ForeignKey(BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                              help_text="Working hours; empty means always on shift.")  # fmt: skip
    active = models.BooleanField(default=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["user__email"]

    def __str__(self) -> str:
        return str(self.user)


class TicketCounter(models.Model):
    """The last ticket number of an organization; row-locked to hand out the next one (no gaps, no repeats)."""

    organization = models.OneToOneField(Organization, primary_key=True, on_delete=models.CASCADE, related_name="+")
    last_number = models.PositiveIntegerField(default=1000)

    def __str__(self) -> str:
        return f"T-{self.last_number}"


class Ticket(TenantModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.PositiveIntegerField()
    subject = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="requested_tickets"
    )
    requester_email = models.EmailField(blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets"
    )
    status = models.CharField(max_length=16, choices=TicketStatus.choices, default=TicketStatus.NEW)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P3)
    category = models.CharField(max_length=60, blank=True)
    required_skills = models.JSONField(default=list, blank=True)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PORTAL)
    tags = models.JSONField(default=list, blank=True)
    routing_reason = models.CharField(max_length=300, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged")

    # SLA: the policy's targets as they applied when the clocks started (or the priority last changed).
    sla_policy = models.ForeignKey(SlaPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    sla_calendar = models.ForeignKey(
        BusinessCalendar, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sla_always_on = models.BooleanField(default=False)
    sla_started_at = models.DateTimeField(default=timezone.now)
    first_response_target = models.DurationField(null=True, blank=True)
    resolution_target = models.DurationField(null=True, blank=True)
    at_risk_ratio = models.DecimalField(max_digits=3, decimal_places=2, default=0.80)
    # [[start ISO, end ISO or null], ...]: time in PENDING_CUSTOMER / ON_HOLD, and between resolving and reopening.
    sla_pauses = models.JSONField(default=list, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    first_response_due = models.DateTimeField(null=True, blank=True)
    resolution_due = models.DateTimeField(null=True, blank=True)
    first_response_state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.OK)
    resolution_state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.OK)
    # As of the last full reading; pages and the API read open tickets' clocks live.
    sla_remaining_seconds = models.IntegerField(null=True, blank=True)
    # When each clock turns at risk, while it runs and is not at risk yet.
    first_response_risk_at = models.DateTimeField(null=True, blank=True)
    resolution_risk_at = models.DateTimeField(null=True, blank=True)
    sla_next_check_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    # {kind: ISO instant}: what the ticket's watchers were told, once each (a clock at risk, a breach level, no
    # technician). Written with the ticket while it is locked, so two checks at once, or a rerun, tell nobody twice.
    notices_sent = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "number"], name="ticket_number_per_org"),
            models.CheckConstraint(condition=Q(status__in=TicketStatus.values), name="ticket_status_valid"),
            models.CheckConstraint(condition=Q(priority__in=Priority.values), name="ticket_priority_valid"),
        ]
        indexes = [
            models.Index(fields=["organization", "status", "-created_at"], name="ticket_org_status"),
            # The lists' default order (newest first, id breaking ties), for one organization and across a partner's.
            models.Index(fields=["organization", "-created_at", "id"], name="ticket_org_created"),
            models.Index(fields=["-created_at", "id"], name="ticket_created"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.subject}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "sla_next_check_at" in update_fields:
            SlaCheck.file([self])

    @property
    def reference(self) -> str:
        return f"T-{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class SlaCheck(models.Model):
    """The breach check's queue: one row per open ticket with a clock still to change state, due at the ticket's
    ``sla_next_check_at``. An entry that differs from its ticket's ``sla_next_check_at`` was moved by something other
    than a reading of the clocks (see ``recheck``).

    It is kept apart from the ticket so that no index on the ticket covers a column the clocks rewrite: PostgreSQL can
    then update a ticket's readings in place (a heap-only update) instead of adding an entry to each of its indexes,
    which is most of the cost of a breach check writing back hundreds of tickets.
    """

    ticket = models.OneToOneField(Ticket, primary_key=True, on_delete=models.CASCADE, related_name="sla_check")
    due_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["due_at", "ticket"], name="sla_check_due")]

    def __str__(self) -> str:
        return f"{self.ticket_id} at {self.due_at:%Y-%m-%d %H:%M}"

    @classmethod
    def recheck(cls, tickets: models.QuerySet[Ticket]) -> int:
        """Have the next breach check read these tickets' clocks afresh: their queue entry comes due now, and no
        longer matches the ticket's ``sla_next_check_at``, which tells the check not to trust the stored instants."""
        return cls.objects.filter(ticket__in=tickets).update(due_at=timezone.now())

    @classmethod
    def file(cls, tickets: Sequence[Ticket]) -> None:
        """Queue each ticket at its ``sla_next_check_at``, or take it off the queue (closed, or nothing to check)."""
        due = {
            ticket.pk: ticket.sla_next_check_at
            for ticket in tickets
            if ticket.sla_next_check_at is not None and ticket.status in OPEN_STATUSES
        }
        gone = [ticket.pk for ticket in tickets if ticket.pk not in due]
        if gone:
            cls.objects.filter(ticket_id__in=gone).delete()
        if not due:
            return
        if connection.vendor != "postgresql":
            SlaCheck.objects.bulk_create(
                [SlaCheck(ticket_id=pk, due_at=at) for pk, at in due.items()],
                update_conflicts=True,
                unique_fields=["ticket"],
                update_fields=["due_at"],
            )
            return
        source, document = recordset(cls._meta.concrete_fields, due.items())
        table = cls._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (ticket_id, due_at) SELECT * FROM {source} "  # noqa: S608 - a model's table
                f"ON CONFLICT (ticket_id) DO UPDATE SET due_at = EXCLUDED.due_at "
                f"WHERE {table}.due_at IS DISTINCT FROM EXCLUDED.due_at",
                [document],
            )


class Comment(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")  # fmt: skip
    author_email = models.EmailField(blank=True)
    body = models.TextField()
    internal = models.BooleanField(default=False, help_text="Internal notes are never shown to the customer.")
    by_staff = models.BooleanField(default=False)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.PORTAL)
    message_id = models.CharField(max_length=300, blank=True, db_index=True, help_text="Email Message-ID, if any.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{'Note' if self.internal else 'Reply'} on {self.ticket_id}"


class Attachment(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="tickets/%Y/%m/")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.filename


class TimeEntry(TenantModel):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="time_entries")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    minutes = models.PositiveIntegerField(validators=[MinValueValidator(1), MaxValueValidator(24 * 60)])
    billable = models.BooleanField(default=True)
    note = models.CharField(max_length=300, blank=True)
    worked_on = models.DateField(default=timezone.localdate)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-worked_on", "-created_at"]
        verbose_name_plural = "time entries"
        constraints = [models.CheckConstraint(condition=Q(minutes__gte=1), name="time_entry_minutes_gte_1")]

    def __str__(self) -> str:
        return f"{self.minutes} min on {self.ticket_id}"


class CannedResponse(models.Model):
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=100)
    body = models.TextField()

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class TicketActivity(TenantModel):
    """The ticket's history: created, routed, status and priority changes, escalations, workflow runs, merges."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="activity")
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")  # fmt: skip
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "ticket activity"

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class SatisfactionResponse(TenantModel):
    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="satisfaction")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")  # fmt: skip
    rating = models.PositiveSmallIntegerField(validators=[MinValueValidator(1), MaxValueValidator(5)])
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(rating__gte=1, rating__lte=5), name="satisfaction_1_to_5")]


class UnknownSender(models.TextChoices):
    REJECT = "reject", "Reply politely and drop the message"
    QUEUE = "queue", "Queue the message for staff"


class SupportSettings(models.Model):
    """An organization's service-desk settings."""

    organization = models.OneToOneField(
        Organization, primary_key=True, on_delete=models.CASCADE, related_name="support_settings"
    )
    auto_routing = models.BooleanField(default=True, help_text="Assign new tickets to a technician automatically.")
    # Mail from any address at these domains opens tickets for the organization (besides its members' addresses).
    verified_domains = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = "support settings"
        verbose_name_plural = "support settings"

    def __str__(self) -> str:
        return f"Support settings of {self.organization}"


class QueuedEmail(models.Model):
    """Inbound mail Keel could not place (unknown sender, when the platform queues such mail): staff decide."""

    sender = models.EmailField()
    subject = models.CharField(max_length=300)
    body = models.TextField()
    message_id = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    handled = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.sender}: {self.subject}"


class WorkflowTrigger(models.TextChoices):
    TICKET_CREATED = "ticket.created", "Ticket created"
    TICKET_UPDATED = "ticket.updated", "Ticket updated"
    COMMENT_ADDED = "comment.added", "Comment added"
    SLA_AT_RISK = "sla.at_risk", "SLA clock at risk"
    SLA_BREACHED = "sla.breached", "SLA clock breached"


class Workflow(models.Model):
    """An automation rule: when ``trigger`` happens to a ticket and every condition holds, apply the actions in order.
    Global (no organization) or one organization's; global and organization rules run together, by position.

    ``conditions``: [{"field": ..., "op": ..., "value": ...}, ...]; ``actions``: [{"type": ..., ...}, ...]. Both are
    checked by ``tickets.workflows`` (the admin form refuses what the engine could not run)."""

    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                                     help_text="Empty: applies to every organization.")  # fmt: skip
    name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=20, choices=WorkflowTrigger.choices)
    position = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    active = models.BooleanField(default=True)
    conditions = models.JSONField(default=list, blank=True, help_text="All must hold; none means always.")
    actions = models.JSONField(default=list, blank=True, help_text="Applied in order; at least one.")
    stop_processing = models.BooleanField(
        default=False, help_text="When this workflow matches, later workflows for the same trigger are skipped."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(trigger__in=WorkflowTrigger.values), name="workflow_trigger_valid")
        ]
        indexes = [models.Index(fields=["trigger", "active"], name="workflow_trigger_active")]

    def __str__(self) -> str:
        return self.name


class WorkflowRun(TenantModel):
    """One workflow acting on one ticket (or failing to, or being stopped by the loop bound). Kept when the workflow
    is deleted: ``workflow_name`` still says which it was."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="workflow_runs")
    workflow = models.ForeignKey(Workflow, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    workflow_name = models.CharField(max_length=100)
    trigger = models.CharField(max_length=20, choices=WorkflowTrigger.choices)
    matched = models.BooleanField(default=True)
    # ["priority P1", "tags +vip", ...]: what each action did.
    actions_applied = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    depth = models.PositiveSmallIntegerField(
        default=1, help_text="1 for a direct trigger, 2 for one caused by a workflow."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "-created_at"], name="workflow_run_recent")]

    def __str__(self) -> str:
        return f"{self.workflow_name} on {self.ticket_id}"

    @property
    def summary(self) -> str:
        return self.error or "; ".join(self.actions_applied) or "no change"
