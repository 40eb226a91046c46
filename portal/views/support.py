"""The customer's Support area: the organization's tickets with their SLA clocks, opening a ticket, the
conversation (replies with attachments), resolving and reopening, the satisfaction survey, attachment downloads
and, for managers, the organization's SLA performance.

Every member of the organization may use these pages (performance: owners and admins). Tickets are looked up within
the current organization by their per-organization number, so another organization's ticket is 404. Internal notes,
and files attached to them, never reach these pages.

SLA clocks are read live (``tickets.clocks.readings``) rather than from the fields the breach check stores, so the
badge is right between two runs of the check. Times are shown in the organization's time zone (the middleware
activates it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.formats import date_format
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal import nav
from portal.access import MemberRequest, require_manager
from portal.forms import add_service_error, service_error_messages, service_error_status
from portal.support_forms import RatingForm, ReplyForm, TicketForm
from portal.templatetags.portal_tags import duration_words
from tenancy.errors import ConflictError
from tenancy.models import Organization
from tickets.clocks import readings
from tickets.downloads import attachment_download
from tickets.models import (
    DONE_STATUSES,
    OPEN_STATUSES,
    Attachment,
    Channel,
    ClockState,
    Comment,
    SatisfactionResponse,
    Ticket,
    TicketStatus,
)
from tickets.reports import PERFORMANCE_WINDOWS, sla_performance
from tickets.services import (
    attachment_add,
    comment_add,
    satisfaction_record,
    ticket_create,
    ticket_set_status,
)

nav.register("Support", "portal:support", order=30)

PAGE_SIZE = 25
SERVICE_ERRORS = (ValidationError, ConflictError)

# The list's filters: name -> statuses shown.
FILTERS: dict[str, frozenset[str] | None] = {
    "open": OPEN_STATUSES,
    "waiting": frozenset({TicketStatus.PENDING_CUSTOMER}),  # waiting on the customer's reply
    "closed": DONE_STATUSES,
    "all": None,
}

# What a customer may do with the status of their ticket.
CUSTOMER_STATUSES = {TicketStatus.RESOLVED: "marked as resolved", TicketStatus.OPEN: "open again"}

CATEGORY_SUGGESTIONS = (
    "Accounts and access",
    "Email",
    "Hardware",
    "Network and internet",
    "Printing",
    "Security",
    "Software",
    "Other",
)

# Badge colours (classes of static/css/keel.css) per clock state.
BADGE_CLASSES = {
    ClockState.OK: "tag-ok",
    ClockState.AT_RISK: "tag-warn",
    ClockState.BREACHED: "tag-danger",
    ClockState.PAUSED: "tag-paused",
    ClockState.MET: "tag-ok",
}


# -- SLA clocks as the customer sees them ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    name: str
    state: str
    due: datetime | None
    remaining: timedelta

    @property
    def label(self) -> str:
        return str(ClockState(self.state).label)

    @property
    def badge_class(self) -> str:
        return BADGE_CLASSES[ClockState(self.state)]


@dataclass(frozen=True)
class SlaView:
    first_response: Clock | None
    resolution: Clock | None
    # The clock the badge shows: the first response until it is given, then the resolution.
    headline: Clock | None
    remaining_text: str


def _remaining_text(ticket: Ticket, clock: Clock | None) -> str:
    if clock is None:
        return ""
    if clock.state == ClockState.MET:
        return "Met in time."
    if clock.state == ClockState.PAUSED:
        if ticket.status == TicketStatus.PENDING_CUSTOMER:
            return "Paused while we wait for your reply."
        return "Paused while the ticket is on hold."
    if clock.state == ClockState.BREACHED:
        if ticket.status in DONE_STATUSES:
            return "Missed the target."
        return f"Overdue by {duration_words(clock.remaining)} of business time."
    return f"{duration_words(clock.remaining)} of business time left."


def sla_view(ticket: Ticket, now: datetime) -> SlaView:
    """The ticket's clocks at ``now``. Needs ``ticket.sla_calendar`` and ``ticket.organization`` loaded."""
    first_reading, resolution_reading = readings(ticket, now)
    first = resolution = None
    # A ticket resolved without a public reply has a first-response clock that was never stopped: leave it out.
    if first_reading is not None and not (ticket.status in DONE_STATUSES and ticket.first_responded_at is None):
        first = Clock("First response", first_reading.state.value, first_reading.due, first_reading.remaining)
    if resolution_reading is not None:
        resolution = Clock(
            "Resolution", resolution_reading.state.value, resolution_reading.due, resolution_reading.remaining
        )
    waiting_for_reply = ticket.first_responded_at is None and ticket.status not in DONE_STATUSES
    headline = first if waiting_for_reply and first is not None else resolution
    return SlaView(first, resolution, headline, _remaining_text(ticket, headline))


# -- lookups --------------------------------------------------------------------------------------------------------


def _org(request: MemberRequest) -> Organization:
    return request.organization


def _tickets(request: MemberRequest) -> QuerySet[Ticket]:
    return Ticket.objects.for_org(_org(request))


def _ticket_or_404(request: MemberRequest, number: int) -> Ticket:
    ticket = (
        _tickets(request)
        .select_related("requester", "assignee", "sla_calendar", "merged_into", "satisfaction")
        .filter(number=number)
        .first()
    )
    if ticket is None:
        raise Http404("No such ticket.")
    # Already loaded by the middleware; the clocks read its time zone.
    ticket.organization = _org(request)
    return ticket


def _satisfaction(ticket: Ticket) -> SatisfactionResponse | None:
    try:
        return ticket.satisfaction
    except SatisfactionResponse.DoesNotExist:
        return None


def _ticket_url(ticket: Ticket) -> str:
    return reverse("portal:support_ticket", args=[ticket.number])


def _public_attachments(organization: Organization) -> QuerySet[Attachment]:
    """Attachments a customer may see: on the ticket itself or on a public reply, never on an internal note."""
    return (
        Attachment.objects.for_org(organization)
        .filter(ticket__organization=organization)
        .filter(Q(comment__isnull=True) | Q(comment__internal=False))
    )


def _attach(ticket: Ticket, uploads: Iterable[UploadedFile], comment: Comment | None = None) -> list[Attachment]:
    stored: list[Attachment] = []
    try:
        for upload in uploads:
            stored.append(attachment_add(ticket=ticket, upload=upload, comment=comment))
    except Exception:
        # The rows roll back with the caller's transaction; the files already written would stay behind.
        for attachment in stored:
            attachment.file.delete(save=False)
        raise
    return stored


# -- the list -------------------------------------------------------------------------------------------------------


@require_safe
def support(request: MemberRequest) -> HttpResponse:
    show = request.GET.get("status", "open")
    if show not in FILTERS:
        show = "open"
    tickets = _tickets(request).select_related("requester", "sla_calendar").order_by("-updated_at", "-number")
    statuses = FILTERS[show]
    if statuses is not None:
        tickets = tickets.filter(status__in=statuses)
    # Queries: the count, then one page of tickets with their requester and calendar.
    page = Paginator(tickets, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = []
    for ticket in page.object_list:
        ticket.organization = _org(request)
        rows.append((ticket, sla_view(ticket, now)))
    context = {"page": page, "rows": rows, "show": show, "filters": list(FILTERS)}
    return render(request, "portal/support/list.html", context)


# -- opening a ticket -----------------------------------------------------------------------------------------------


def _new_context(form: TicketForm) -> dict[str, Any]:
    return {"form": form, "categories": CATEGORY_SUGGESTIONS}


@require_http_methods(["GET", "POST"])
def support_new(request: MemberRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "portal/support/new.html", _new_context(TicketForm()))
    form = TicketForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        try:
            # One transaction: a refused attachment leaves no ticket behind (and uses no ticket number).
            with transaction.atomic():
                ticket = ticket_create(
                    organization=_org(request),
                    subject=data["subject"],
                    description=data["description"],
                    priority=data["priority"],
                    category=data["category"],
                    requester=request.user,
                    channel=Channel.PORTAL,
                    actor=request.user,
                )
                _attach(ticket, data["attachments"])
        except SERVICE_ERRORS as exc:
            add_service_error(form, exc)
            return render(request, "portal/support/new.html", _new_context(form), status=service_error_status(exc))
        message = f"Ticket {ticket.reference} is open."
        if ticket.first_response_due is not None:
            due = date_format(timezone.localtime(ticket.first_response_due), "D j M, H:i")
            message += f" We will respond by {due}."
        messages.success(request, message)
        return HttpResponseRedirect(_ticket_url(ticket))
    return render(request, "portal/support/new.html", _new_context(form), status=400)


# -- one ticket -----------------------------------------------------------------------------------------------------


def _conversation(request: MemberRequest, ticket: Ticket) -> tuple[list[Comment], list[Attachment]]:
    """Public comments oldest first, each with ``public_attachments``; and the files attached to the ticket itself."""
    org = _org(request)
    # Query 1: the public comments with their authors.
    comments = list(
        Comment.objects.for_org(org)
        .filter(ticket=ticket, internal=False)
        .select_related("author")
        .order_by("created_at", "id")
    )
    # Query 2: every attachment a customer may see on this ticket, grouped here by comment.
    by_comment: dict[int | None, list[Attachment]] = defaultdict(list)
    for attachment in _public_attachments(org).filter(ticket=ticket).order_by("created_at", "id"):
        by_comment[attachment.comment_id].append(attachment)
    for comment in comments:
        comment.public_attachments = by_comment.get(comment.pk, [])
    return comments, by_comment.get(None, [])


def _render_ticket(
    request: MemberRequest,
    ticket: Ticket,
    *,
    reply_form: ReplyForm | None = None,
    rating_form: RatingForm | None = None,
    status: int = 200,
) -> HttpResponse:
    sla = sla_view(ticket, timezone.now())
    if getattr(request, "htmx", False):
        # The SLA block refreshing itself (every 60 s).
        response = render(request, "portal/support/_sla.html", {"ticket": ticket, "sla": sla})
    else:
        comments, ticket_attachments = _conversation(request, ticket)
        satisfaction = _satisfaction(ticket)
        done = ticket.status in DONE_STATUSES
        merged = ticket.merged_into_id is not None
        context = {
            "ticket": ticket,
            "sla": sla,
            "comments": comments,
            "ticket_attachments": ticket_attachments,
            "satisfaction": satisfaction,
            "merged": merged,
            "reply_form": None if merged else reply_form or ReplyForm(),
            "rating_form": (rating_form or RatingForm()) if done and satisfaction is None and not merged else None,
            "can_resolve": not done and not merged,
            "can_reopen": done and not merged,
        }
        response = render(request, "portal/support/ticket.html", context, status=status)
    # The same address answers with the page or, to htmx, with the SLA block alone.
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_safe
def support_ticket(request: MemberRequest, number: int) -> HttpResponse:
    return _render_ticket(request, _ticket_or_404(request, number))


def _refuse(request: MemberRequest, ticket: Ticket, exc: Exception) -> HttpResponseRedirect:
    for message in service_error_messages(exc):
        messages.error(request, message)
    return HttpResponseRedirect(_ticket_url(ticket))


@require_POST
def support_reply(request: MemberRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(request, number)
    if ticket.merged_into is not None:
        messages.error(request, f"This ticket was merged into {ticket.merged_into.reference}; reply there.")
        return HttpResponseRedirect(_ticket_url(ticket.merged_into))
    form = ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_ticket(request, ticket, reply_form=form, status=400)
    try:
        with transaction.atomic():
            comment = comment_add(
                ticket=ticket,
                body=form.cleaned_data["body"],
                author=request.user,
                by_staff=False,
                channel=Channel.PORTAL,
            )
            _attach(ticket, form.cleaned_data["attachments"], comment)
    except SERVICE_ERRORS as exc:
        add_service_error(form, exc)
        return _render_ticket(request, ticket, reply_form=form, status=service_error_status(exc))
    messages.success(request, "Your reply was added.")
    return HttpResponseRedirect(_ticket_url(ticket) + "#latest")


@require_POST
def support_status(request: MemberRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(request, number)
    wanted = request.POST.get("status", "")
    if wanted not in CUSTOMER_STATUSES:
        messages.error(request, "You can mark a ticket as resolved or reopen it.")
        return _render_ticket(request, ticket, status=400)
    try:
        ticket_set_status(ticket=ticket, status=wanted, actor=request.user)
    except SERVICE_ERRORS as exc:
        return _refuse(request, ticket, exc)
    messages.success(request, f"{ticket.reference} is {CUSTOMER_STATUSES[TicketStatus(wanted)]}.")
    return HttpResponseRedirect(_ticket_url(ticket))


@require_POST
def support_rate(request: MemberRequest, number: int) -> HttpResponse:
    ticket = _ticket_or_404(request, number)
    form = RatingForm(request.POST)
    if not form.is_valid():
        if ticket.status not in DONE_STATUSES or _satisfaction(ticket) is not None:
            # No survey on the page to show the errors beside: say it at the top.
            return _refuse(request, ticket, ValidationError("Choose a rating from 1 to 5."))
        return _render_ticket(request, ticket, rating_form=form, status=400)
    try:
        satisfaction_record(ticket=ticket, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"])
    except SERVICE_ERRORS as exc:
        return _refuse(request, ticket, exc)
    messages.success(request, "Thank you for your feedback.")
    return HttpResponseRedirect(_ticket_url(ticket))


@require_safe
def support_attachment(request: MemberRequest, attachment_id: int) -> FileResponse:
    return attachment_download(_public_attachments(_org(request)).filter(pk=attachment_id).first())


# -- performance ----------------------------------------------------------------------------------------------------


@require_safe
def support_performance(request: MemberRequest) -> HttpResponse:
    require_manager(request)
    periods, priorities = sla_performance(_org(request), now=timezone.now())
    context = {"periods": periods, "priorities": priorities, "longest": max(PERFORMANCE_WINDOWS)}
    return render(request, "portal/support/performance.html", context)
