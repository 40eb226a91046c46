"""The staff working screens for tickets: the list (coloured SLA state, queues, search by number) with bulk actions
(``tickets.admin_actions``), and the ticket page: its fields, SLA clocks, the conversation with internal notes
marked, replies and notes with a canned-response picker and a file, time with its totals, and the history.

Nothing here writes a ticket row itself: the page's forms (``tickets.admin_forms``) call the services with the
signed-in staff member as the actor, so the SLA clocks, the activity log, events and emails stay right.
Staff are not tenants: they see every organization's tickets. Writing needs the model permissions (change ticket;
add comment; add time entry), and the admin site itself requires a verified one-time password.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from tenancy.errors import ConflictError, ServiceValidationError
from tickets import clocks
from tickets.admin_actions import TicketBulkActions, actor_of
from tickets.admin_forms import ReplyForm, TicketWorkForm, TimeEntryForm, canned_responses
from tickets.downloads import attachment_download
from tickets.models import (
    OPEN_STATUSES,
    Attachment,
    Channel,
    ClockState,
    Comment,
    Ticket,
    TicketActivity,
    TicketStatus,
    TimeEntry,
)
from tickets.services import (
    attachment_add,
    comment_add,
    ticket_assign,
    ticket_set_priority,
    ticket_set_status,
    ticket_update,
    time_entry_add,
)

# "T-1042", "t1042" or "1042".
NUMBER = re.compile(r"^\s*(?:T-?)?(\d{1,9})\s*$", re.IGNORECASE)
ACTIVITY_SHOWN = 50
SERVICE_ERRORS = (ServiceValidationError, ConflictError)


def local_time(moment: datetime | None, zone: str) -> str:
    """``Tue 10 Nov, 12:00 AEDT``: a due time in the organization's own zone."""
    if moment is None:
        return ""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M} {local.tzname()}"


def duration_text(amount: timedelta) -> str:
    minutes = int(abs(amount).total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes} min"
    return f"{hours} h" if hours else f"{minutes} min"


def badge(state: str) -> str:
    return format_html('<span class="sla-badge sla-{}">{}</span>', state, ClockState(state).label)


class QueueFilter(admin.SimpleListFilter):
    """The working queues; each lists open tickets only."""

    title = "queue (open tickets)"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("mine", "Mine"), ("unassigned", "Unassigned"), ("at_risk", "At risk"), ("breached", "Breached")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        wanted = self.value()
        if wanted not in {"mine", "unassigned", "at_risk", "breached"}:
            return queryset
        open_tickets = queryset.filter(status__in=OPEN_STATUSES)
        if wanted == "mine":
            return open_tickets.filter(assignee_id=request.user.pk)
        if wanted == "unassigned":
            return open_tickets.filter(assignee__isnull=True)
        return open_tickets.filter(Q(first_response_state=wanted) | Q(resolution_state=wanted))


@admin.register(Ticket)
class TicketAdmin(TicketBulkActions):
    list_display = [
        "reference_label",
        "subject",
        "organization",
        "status",
        "priority",
        "assignee",
        "first_response_badge",
        "resolution_badge",
        "next_due",
        "created_at",
    ]
    list_display_links = ["reference_label", "subject"]
    list_filter = [QueueFilter, "status", "priority", "organization", "channel"]
    search_fields = ["subject", "requester_email", "organization__name"]
    search_help_text = "A number (T-1042 or 1042), or words of the subject, the requester's email or the organization."
    list_select_related = ["organization", "assignee"]
    list_per_page = 50
    date_hierarchy = "created_at"

    class Media:
        css = {"all": ["tickets/admin.css"]}
        js = ["tickets/canned-response.js"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str
    ) -> tuple[QuerySet[Ticket], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if match := NUMBER.match(search_term):
            found = found | queryset.filter(number=int(match.group(1)))
        return found, may_have_duplicates

    # -- list columns ----------------------------------------------------------------------------------------------

    @admin.display(description="Ticket", ordering="number")
    def reference_label(self, ticket: Ticket) -> str:
        return ticket.reference

    @admin.display(description="First response", ordering="first_response_state")
    def first_response_badge(self, ticket: Ticket) -> str:
        return badge(ticket.first_response_state)

    @admin.display(description="Resolution", ordering="resolution_state")
    def resolution_badge(self, ticket: Ticket) -> str:
        return badge(ticket.resolution_state)

    @admin.display(description="Next due (local time)", ordering="resolution_due")
    def next_due(self, ticket: Ticket) -> str:
        running = (ClockState.OK, ClockState.AT_RISK, ClockState.BREACHED)
        dues = [
            due
            for due, state in (
                (ticket.first_response_due, ticket.first_response_state),
                (ticket.resolution_due, ticket.resolution_state),
            )
            if due is not None and state in running
        ]
        return local_time(min(dues), ticket.organization.timezone) if dues else ""

    # -- the ticket page -------------------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<uuid:pk>/reply/", view(self.reply_view), name="tickets_ticket_reply"),
            path("<uuid:pk>/time/", view(self.time_view), name="tickets_ticket_time"),
            path(
                "<uuid:pk>/attachments/<int:attachment_id>/",
                view(self.attachment_view),
                name="tickets_ticket_attachment",
            ),
            *super().get_urls(),
        ]

    def _ticket(self, request: HttpRequest, object_id: Any) -> Ticket | None:
        try:
            pk = uuid.UUID(str(object_id))
        except ValueError:
            return None
        related = ["organization", "requester", "assignee", "sla_calendar", "merged_into", "satisfaction"]
        ticket: Ticket | None = self.get_queryset(request).select_related(*related).filter(pk=pk).first()
        return ticket

    def _viewable(self, request: HttpRequest, pk: Any) -> Ticket:
        ticket = self._ticket(request, pk)
        if ticket is None:
            raise Http404("No such ticket.")
        if not self.has_view_or_change_permission(request, ticket):
            raise PermissionDenied
        return ticket

    def _url(self, ticket: Ticket, anchor: str = "") -> str:
        return reverse("admin:tickets_ticket_change", args=[ticket.pk]) + anchor

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        ticket = self._ticket(request, unquote(object_id))
        if ticket is None:
            self.message_user(request, f"There is no ticket {object_id}; perhaps it was deleted.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:tickets_ticket_changelist"))
        if not self.has_view_or_change_permission(request, ticket):
            raise PermissionDenied
        if request.method != "POST":
            return self._render(request, ticket)
        if not self._can_change(request, ticket):
            raise PermissionDenied
        form = TicketWorkForm(request.POST, ticket=ticket)
        if not form.is_valid():
            return self._render(request, ticket, work_form=form, status=400)
        changes = form.changes()
        if not changes:
            self.message_user(request, "Nothing to change.", messages.INFO)
            return HttpResponseRedirect(self._url(ticket))
        try:
            self._apply(request, ticket, changes)
        except SERVICE_ERRORS as exc:
            _form_errors(form, exc)
            return self._render(request, ticket, work_form=form, status=400)
        self.log_change(request, ticket, [{"changed": {"fields": sorted(changes)}}])
        self.message_user(request, f"{ticket.reference} changed: {', '.join(sorted(changes))}.", messages.SUCCESS)
        return HttpResponseRedirect(self._url(ticket))

    @staticmethod
    def _apply(request: HttpRequest, ticket: Ticket, changes: dict[str, Any]) -> None:
        """Each change through its service, all in one transaction."""
        actor = actor_of(request)
        with transaction.atomic():
            if "assignee" in changes:
                ticket_assign(ticket=ticket, assignee=changes["assignee"], actor=actor)
            if "status" in changes:
                ticket_set_status(ticket=ticket, status=changes["status"], actor=actor)
            if "priority" in changes:
                ticket_set_priority(ticket=ticket, priority=changes["priority"], actor=actor)
            edits = {name: changes[name] for name in ("category", "tags") if name in changes}
            if edits:
                ticket_update(ticket=ticket, actor=actor, **edits)

    def _can_change(self, request: HttpRequest, ticket: Ticket) -> bool:
        return ticket.merged_into_id is None and self.has_change_permission(request, ticket)

    @staticmethod
    def _can_reply(request: HttpRequest, ticket: Ticket) -> bool:
        return ticket.merged_into_id is None and request.user.has_perm("tickets.add_comment")

    @staticmethod
    def _can_log_time(request: HttpRequest) -> bool:
        return request.user.has_perm("tickets.add_timeentry")

    # -- replies, time, files --------------------------------------------------------------------------------------

    def reply_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        ticket = self._viewable(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self._url(ticket, "#reply"))
        if not self._can_reply(request, ticket):
            raise PermissionDenied
        form = ReplyForm(request.POST, request.FILES, organization=ticket.organization)
        if "_insert" in request.POST:
            filled = ReplyForm(initial=form.with_canned_inserted(), organization=ticket.organization)
            return self._render(request, ticket, reply_form=filled)
        if not form.is_valid():
            return self._render(request, ticket, reply_form=form, status=400)
        data = form.cleaned_data
        actor = actor_of(request)
        try:
            with transaction.atomic():
                comment = comment_add(ticket=ticket, body=data["body"], author=actor, internal=data["internal"],
                                      by_staff=True, channel=Channel.PORTAL)  # fmt: skip
                if data["then_status"]:
                    ticket_set_status(ticket=ticket, status=data["then_status"], actor=actor)
                # Last: once the file is stored, nothing after it can roll the reply back and leave it behind.
                if data["attachment"] is not None:
                    attachment_add(ticket=ticket, upload=data["attachment"], comment=comment)
        except SERVICE_ERRORS as exc:
            _form_errors(form, exc)
            return self._render(request, ticket, reply_form=form, status=400)
        if data["internal"]:
            done = "Internal note added."
        elif ticket.requester_email:
            done = f"Reply sent to {ticket.requester_email}."
        else:
            done = "Reply added."
        if data["then_status"]:
            done += f" The ticket is now {TicketStatus(data['then_status']).label.lower()}."
        self.log_change(request, ticket, "Added an internal note" if data["internal"] else "Replied")
        self.message_user(request, done, messages.SUCCESS)
        return HttpResponseRedirect(self._url(ticket, "#conversation"))

    def time_view(self, request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
        ticket = self._viewable(request, pk)
        if request.method != "POST":
            return HttpResponseRedirect(self._url(ticket, "#time"))
        if not self._can_log_time(request):
            raise PermissionDenied
        form = TimeEntryForm(request.POST)
        actor = actor_of(request)
        if not form.is_valid() or actor is None:
            return self._render(request, ticket, time_form=form, status=400)
        data = form.cleaned_data
        try:
            entry = time_entry_add(ticket=ticket, technician=actor, minutes=data["minutes"], billable=data["billable"],
                                   note=data["note"], worked_on=data["worked_on"])  # fmt: skip
        except SERVICE_ERRORS as exc:
            _form_errors(form, exc)
            return self._render(request, ticket, time_form=form, status=400)
        kind = "billable" if entry.billable else "non-billable"
        self.log_change(request, ticket, f"Logged {entry.minutes} minutes ({kind})")
        self.message_user(request, f"{entry.minutes} minutes ({kind}) logged on {ticket.reference}.", messages.SUCCESS)
        return HttpResponseRedirect(self._url(ticket, "#time"))

    def attachment_view(self, request: HttpRequest, pk: uuid.UUID, attachment_id: int) -> FileResponse:
        ticket = self._viewable(request, pk)
        return attachment_download(
            Attachment.objects.for_org(ticket.organization_id).filter(ticket=ticket, pk=attachment_id).first()
        )

    # -- rendering -------------------------------------------------------------------------------------------------

    def _render(
        self,
        request: HttpRequest,
        ticket: Ticket,
        *,
        work_form: TicketWorkForm | None = None,
        reply_form: ReplyForm | None = None,
        time_form: TimeEntryForm | None = None,
        status: int = 200,
    ) -> TemplateResponse:
        organization = ticket.organization
        can_change = self._can_change(request, ticket)
        can_reply = self._can_reply(request, ticket)
        can_log_time = self._can_log_time(request)
        if can_change and work_form is None:
            work_form = TicketWorkForm(ticket=ticket)
        if can_reply and reply_form is None:
            reply_form = ReplyForm(organization=organization)
        if can_log_time and time_form is None:
            time_form = TimeEntryForm(initial={"billable": True})
        comments = list(
            Comment.objects.for_org(organization).filter(ticket=ticket).select_related("author").order_by("created_at")
        )
        files: dict[int | None, list[Attachment]] = defaultdict(list)
        for attachment in Attachment.objects.for_org(organization).filter(ticket=ticket).order_by("created_at", "pk"):
            files[attachment.comment_id].append(attachment)
        entries = list(TimeEntry.objects.for_org(organization).filter(ticket=ticket).select_related("technician"))
        activity = list(
            TicketActivity.objects.for_org(organization)
            .filter(ticket=ticket)
            .select_related("actor")
            .order_by("-created_at", "-pk")[:ACTIVITY_SHOWN]
        )
        errors = [form for form in (work_form, reply_form, time_form) if form is not None and form.errors]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{ticket.reference} {ticket.subject}",
            "subtitle": None,
            "original": ticket,
            "ticket": ticket,
            "object_id": str(ticket.pk),
            "change": True,
            "add": False,
            "is_popup": False,
            "errors": errors,
            "has_view_permission": self.has_view_permission(request, ticket),
            "has_change_permission": can_change,
            "media": self.media,
            "sla": _sla_rows(ticket),
            "timezone_name": organization.timezone,
            "comments": [(comment, files.get(comment.pk, [])) for comment in comments],
            "ticket_files": files.get(None, []),
            "entries": entries,
            "minutes_total": sum(entry.minutes for entry in entries),
            "minutes_billable": sum(entry.minutes for entry in entries if entry.billable),
            "activity": activity,
            "work_form": work_form,
            "reply_form": reply_form,
            "time_form": time_form,
            "canned_bodies": _canned_bodies(reply_form, organization),
            "satisfaction": getattr(ticket, "satisfaction", None),
        }
        return TemplateResponse(request, "admin/tickets/ticket/change_form.html", context, status=status)


def _canned_bodies(form: ReplyForm | None, organization: Any) -> dict[str, str]:
    """For the picker's script: the text each canned response puts into the message."""
    if form is None:
        return {}
    return {str(pk): body for pk, body in canned_responses(organization).values_list("pk", "body")}


def _sla_rows(ticket: Ticket) -> list[dict[str, Any]]:
    """The clocks read now (not the stored reading, which the breach check refreshes every few minutes)."""
    first, resolution = clocks.readings(ticket, timezone.now())
    rows = []
    for label, reading in (("First response", first), ("Resolution", resolution)):
        if reading is None:
            continue
        state = reading.state.value
        if state == ClockState.MET:
            left = "Met"
        elif state == ClockState.PAUSED:
            left = f"Paused with {duration_text(reading.remaining)} of business time left"
        elif reading.remaining < timedelta(0):
            left = f"Overdue by {duration_text(reading.remaining)} of business time"
        else:
            left = f"{duration_text(reading.remaining)} of business time left"
        rows.append(
            {
                "label": label,
                "badge": badge(state),
                "due": local_time(reading.due, ticket.organization.timezone),
                "left": left,
            }
        )
    return rows


def _form_errors(form: Any, exc: Exception) -> None:
    """A service's refusal beside the field it names, else above the form."""
    if isinstance(exc, ServiceValidationError):
        for field, errors in exc.message_dict.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
    elif isinstance(exc, ConflictError):
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
