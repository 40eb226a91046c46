"""Support tickets in the partner API and the portal's own calls: tickets, their conversation and time, bulk changes
and the escalation queue.

Who may do what (``Caller``):
- **support** -- a signed-in staff member (``is_staff``), or a *partner* key (the reseller doing the support): sees
  and writes internal notes, and their replies count as the MSP's (``by_staff``: they stop the first-response clock
  and email the requester);
- **organization keys** with ``tickets:write`` may also assign, set priority and status, log time and bulk-change,
  but their replies are the customer's and they never see internal notes;
- **customers** (signed-in people who are not staff, partner admins included) see their organizations' tickets, open
  tickets and reply, and may change only the subject and description and set the status to RESOLVED or back to OPEN.

Keys need ``read`` + ``tickets:read`` to read and ``write`` + ``tickets:write`` to write; sessions need no scopes.
Every ticket is looked up within the organizations the caller may see (``TenantAccess``): another organization's
ticket is 404 on every route. Each write is one transaction: a request that fails half-way changes nothing.

The ``sla`` block is read live: open tickets' clocks are evaluated at the moment of the request (the stored reading
is refreshed only on changes and by the SLA check), so ``remaining_seconds`` is current.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, QuerySet, Sum, When
from django.db.models.functions import Coalesce, Least
from django.http.response import HttpResponseBase
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, permissions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from tenancy.api_base import PAGE_PARAMETERS, TenantAPIView, represent_many
from tenancy.api_base import Caller as BaseCaller
from tenancy.api_cache import cached_list
from tenancy.models import User
from tickets.bulk import tickets_bulk_update
from tickets.clocks import clocks_refresh
from tickets.filters import TicketFilter
from tickets.models import (
    OPEN_STATUSES,
    Channel,
    ClockState,
    Comment,
    Ticket,
    TicketStatus,
    TimeEntry,
)
from tickets.serializers import (
    BULK_RESULT,
    NOT_FOUND,
    TICKET_ID,
    TIME_ENTRY_PAGE,
    TicketBulkSerializer,
    TicketCommentCreateSerializer,
    TicketCommentSerializer,
    TicketCreateSerializer,
    TicketSerializer,
    TicketTimeEntryCreateSerializer,
    TicketTimeEntrySerializer,
    TicketUpdateSerializer,
)
from tickets.services import (
    EDITABLE_FIELDS,
    comment_add,
    ticket_assign,
    ticket_create,
    ticket_set_priority,
    ticket_set_status,
    ticket_update,
    time_entry_add,
)

READ_SCOPE = "tickets:read"
WRITE_SCOPE = "tickets:write"
CUSTOMER_FIELDS = frozenset({"subject", "description", "status"})
CUSTOMER_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.OPEN})
ALERT_STATES = [ClockState.AT_RISK, ClockState.BREACHED]
RUNNING_STATES = [ClockState.OK, ClockState.AT_RISK, ClockState.BREACHED]


# -- who is calling ------------------------------------------------------------------------------------------------


class Caller(BaseCaller):
    @property
    def is_support(self) -> bool:
        """Staff, or a partner's key: the MSP's side of the conversation."""
        return self.is_staff or self.is_partner_key


def staff_member(user_id: uuid.UUID, field: str) -> User:
    """An active staff member by id (staff are platform-wide, not tenant rows), or a 400 naming ``field``."""
    user = User.objects.filter(pk=user_id, is_staff=True, is_active=True).first()
    if user is None:
        raise exceptions.ValidationError({field: ["No active staff member has this id."]})
    return user


def read_clocks_now(tickets: Iterable[Ticket], now: datetime | None = None) -> None:
    """Evaluate open tickets' SLA clocks at ``now`` on the instances (nothing is saved). Closed clocks are final."""
    now = now or timezone.now()
    for ticket in tickets:
        if ticket.is_open:
            clocks_refresh(ticket, now)


# -- views ---------------------------------------------------------------------------------------------------------


class TicketAPIView(TenantAPIView):
    """Scopes by method, the caller, and the tickets it may see."""

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return (READ_SCOPE,) if self.request.method in permissions.SAFE_METHODS else (WRITE_SCOPE,)

    @property
    def caller(self) -> Caller:
        return Caller.of(self.request)

    def tickets(self) -> QuerySet[Ticket]:
        """Every ticket lookup starts here: the chosen organization's, or all the caller may see."""
        if self.tenant.organization is not None:
            scoped = Ticket.objects.for_org(self.tenant.organization)
        else:
            scoped = Ticket.objects.for_orgs(self.tenant.organizations)
        # The sla calendar is read when open tickets' clocks are evaluated for the response; the organization's logo
        # (up to 256 KB) never is, and would otherwise come with every row.
        return (
            scoped.select_related("organization", "assignee", "sla_policy", "sla_calendar")
            .defer("organization__brand_logo")
            .order_by("-created_at", "id")
        )

    def get_ticket(self, pk: str) -> Ticket:
        try:
            ident = uuid.UUID(str(pk))
        except ValueError:
            raise exceptions.NotFound("No such ticket.") from None
        ticket = self.tickets().filter(pk=ident).first()
        if ticket is None:
            raise exceptions.NotFound("No such ticket.")
        return ticket

    def ticket_data(self, ticket: Ticket) -> dict[str, Any]:
        read_clocks_now([ticket])
        return dict(TicketSerializer(ticket).data)


class TicketViewSet(TicketAPIView, viewsets.GenericViewSet):
    """Tickets. List (filters ``status``, ``priority``, ``assignee``, ``organization``, ``sla_state``, ``q``,
    ``ordering``), open, read and change them.

    A partner key without ``X-Organization`` lists across its organizations; opening or changing a ticket needs the
    header. Changes: customers may change only ``subject``, ``description`` and ``status`` (to RESOLVED or back to
    OPEN) -- anything else is 403; staff and API keys with ``tickets:write`` may also set ``priority``, ``assignee``
    (a staff member's id, or null), ``category``, ``tags`` and ``required_skills``. A merged ticket's status cannot
    change (409). All the changes of one request apply together or not at all.
    """

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    queryset = Ticket.objects.none()  # the real queryset depends on the caller: see get_queryset

    def get_queryset(self) -> QuerySet[Ticket]:
        if getattr(self, "swagger_fake_view", False):
            return Ticket.objects.none()
        return self.tickets()

    @extend_schema(responses=TicketSerializer(many=True))
    def list(self, request: Request) -> HttpResponseBase:
        def build() -> Response:
            page = self.paginate_queryset(self.filter_queryset(self.get_queryset())) or []
            read_clocks_now(page)
            return self.get_paginated_response(represent_many(TicketSerializer, page))

        return cached_list(self, build)

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketSerializer})
    def create(self, request: Request) -> Response:
        organization = self.tenant.require_organization()
        incoming = TicketCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        caller = self.caller
        requester, requester_email = caller.user, ""
        if values.get("requester_email"):
            if caller.is_customer:
                raise exceptions.ValidationError(
                    {"requester_email": ["Only API keys and staff open tickets for someone else."]}
                )
            requester_email = values["requester_email"]
            # A member of the organization with that address becomes the requester; anyone else is kept by email.
            requester = User.objects.filter(
                email__iexact=requester_email, memberships__organization=organization
            ).first()
        ticket = ticket_create(
            organization=organization,
            subject=values["subject"],
            description=values["description"],
            requester=requester,
            requester_email=requester_email,
            priority=values["priority"],
            channel=Channel.API,
            category=values["category"],
            tags=values.get("tags"),
            required_skills=values.get("required_skills"),
            actor=caller.user,
        )
        return Response(self.ticket_data(self.get_ticket(str(ticket.pk))), status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[TICKET_ID], responses={200: TicketSerializer, 404: NOT_FOUND})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.ticket_data(self.get_ticket(pk)))

    @extend_schema(
        parameters=[TICKET_ID],
        request=TicketUpdateSerializer,
        responses={
            200: TicketSerializer,
            403: OpenApiResponse(description="A customer tried to change more than they may."),
            404: NOT_FOUND,
            409: OpenApiResponse(description="The ticket was merged into another; its status cannot change."),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        ticket = self.get_ticket(pk)
        incoming = TicketUpdateSerializer(data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        changes = dict(incoming.validated_data)
        caller = self.caller
        if caller.is_customer:
            refused = sorted(set(changes) - CUSTOMER_FIELDS)
            if refused or changes.get("status", TicketStatus.OPEN) not in CUSTOMER_STATUSES:
                raise exceptions.PermissionDenied(
                    "You may change only the subject and description, and set the status to RESOLVED or OPEN."
                )
        assignee: Any = ...
        if "assignee" in changes:
            assignee = staff_member(changes["assignee"], "assignee") if changes["assignee"] else None
        actor = caller.user
        with transaction.atomic():
            edits = {name: changes[name] for name in EDITABLE_FIELDS if name in changes}
            if edits:
                ticket = ticket_update(ticket=ticket, actor=actor, **edits)
            if "priority" in changes:
                ticket = ticket_set_priority(ticket=ticket, priority=changes["priority"], actor=actor)
            if assignee is not ...:
                ticket = ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
            if "status" in changes:
                ticket = ticket_set_status(ticket=ticket, status=changes["status"], actor=actor)
        return Response(self.ticket_data(self.get_ticket(pk)))


class TicketEscalationsView(TicketAPIView, generics.GenericAPIView[Ticket]):
    """Open tickets with a clock at risk or breached now, the soonest due first. That includes tickets whose clock
    crossed its threshold since the last SLA check (their next check time has passed)."""

    serializer_class = TicketSerializer
    queryset = Ticket.objects.none()  # see tickets()
    filter_backends: list[Any] = []

    @extend_schema(responses=TicketSerializer(many=True))
    def get(self, request: Request) -> Response:
        now = timezone.now()
        # The due time of each clock still running; LEAST of the two (Coalesce keeps one when the other is null,
        # as SQLite's MIN() would return null).
        first = Case(When(first_response_state__in=RUNNING_STATES, then=F("first_response_due")),
                     output_field=DateTimeField())  # fmt: skip
        resolution = Case(When(resolution_state__in=RUNNING_STATES, then=F("resolution_due")),
                          output_field=DateTimeField())  # fmt: skip
        escalated = (
            self.tickets()
            .filter(status__in=OPEN_STATUSES)
            .filter(
                Q(first_response_state__in=ALERT_STATES)
                | Q(resolution_state__in=ALERT_STATES)
                | Q(sla_next_check_at__lte=now)
            )
            .annotate(due=Least(Coalesce(first, resolution), Coalesce(resolution, first)))
            .order_by(F("due").asc(nulls_last=True), "created_at", "id")
        )
        page = self.paginate_queryset(escalated) or []
        read_clocks_now(page, now)
        return self.get_paginated_response(represent_many(TicketSerializer, page))


class TicketCommentsView(TicketAPIView, generics.GenericAPIView[Comment]):
    """A ticket's conversation, oldest first. Internal notes are listed only for support callers (staff and partner
    keys) and only they may write them; their public replies count as the MSP's (they stop the first-response clock
    and email the requester). Organization keys and customers reply as the customer."""

    serializer_class = TicketCommentSerializer
    queryset = Comment.objects.none()  # see get()
    filter_backends: list[Any] = []

    @extend_schema(parameters=[TICKET_ID], responses={200: TicketCommentSerializer(many=True), 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        ticket = self.get_ticket(pk)
        comments = (
            Comment.objects.for_org(ticket.organization_id)
            .filter(ticket=ticket)
            .select_related("author")
            .prefetch_related("attachments")
            .order_by("created_at", "id")
        )
        if not self.caller.is_support:
            comments = comments.filter(internal=False)
        page = self.paginate_queryset(comments) or []
        return self.get_paginated_response(represent_many(TicketCommentSerializer, page))

    @extend_schema(
        parameters=[TICKET_ID],
        request=TicketCommentCreateSerializer,
        responses={201: TicketCommentSerializer, 404: NOT_FOUND},
    )
    def post(self, request: Request, pk: str) -> Response:
        ticket = self.get_ticket(pk)
        incoming = TicketCommentCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        caller = self.caller
        comment = comment_add(
            ticket=ticket,
            body=incoming.validated_data["body"],
            author=caller.user,
            internal=incoming.validated_data["internal"],
            by_staff=caller.is_support,
            channel=Channel.API,
        )
        return Response(TicketCommentSerializer(comment).data, status=status.HTTP_201_CREATED)


class TicketTimeEntriesView(TicketAPIView, generics.GenericAPIView[TimeEntry]):
    """Time worked on a ticket, newest first, with the ticket's totals. Staff log their own time (or a colleague's
    with ``technician``); API keys name the staff member in ``technician``; customers cannot log time."""

    serializer_class = TicketTimeEntrySerializer
    queryset = TimeEntry.objects.none()  # see get()
    filter_backends: list[Any] = []

    @extend_schema(parameters=[TICKET_ID, *PAGE_PARAMETERS], responses={200: TIME_ENTRY_PAGE, 404: NOT_FOUND})
    def get(self, request: Request, pk: str) -> Response:
        ticket = self.get_ticket(pk)
        entries = (
            TimeEntry.objects.for_org(ticket.organization_id)
            .filter(ticket=ticket)
            .select_related("technician")
            .order_by("-worked_on", "-created_at", "-id")
        )
        totals = entries.aggregate(
            total_minutes=Coalesce(Sum("minutes"), 0),
            billable_minutes=Coalesce(Sum("minutes", filter=Q(billable=True)), 0),
        )
        page = self.paginate_queryset(entries) or []
        response = self.get_paginated_response(represent_many(TicketTimeEntrySerializer, page))
        response.data.update(totals)
        return response

    @extend_schema(
        parameters=[TICKET_ID],
        request=TicketTimeEntryCreateSerializer,
        responses={201: TicketTimeEntrySerializer, 403: OpenApiResponse(description="Customers cannot log time.")},
    )
    def post(self, request: Request, pk: str) -> Response:
        ticket = self.get_ticket(pk)
        caller = self.caller
        if caller.is_customer:
            raise exceptions.PermissionDenied("Only staff and API keys log time.")
        incoming = TicketTimeEntryCreateSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        if values.get("technician") is not None:
            technician = staff_member(values["technician"], "technician")
        elif caller.user is not None:
            technician = caller.user
        else:
            raise exceptions.ValidationError({"technician": ["Name the staff member who did the work (their id)."]})
        entry = time_entry_add(
            ticket=ticket,
            technician=technician,
            minutes=values["minutes"],
            billable=values["billable"],
            note=values["note"],
            worked_on=values.get("worked_on"),
        )
        return Response(TicketTimeEntrySerializer(entry).data, status=status.HTTP_201_CREATED)


class TicketBulkView(TicketAPIView):
    """Apply one change (assignee, status, priority, added tags) to up to 500 tickets of the organization acted for,
    all or nothing. Any id the caller cannot see is 404 and nothing changes. Staff and API keys only."""

    @extend_schema(
        request=TicketBulkSerializer,
        responses={
            200: BULK_RESULT,
            403: OpenApiResponse(description="Customers cannot bulk-change tickets."),
            404: OpenApiResponse(description="One of the ids is not a ticket the caller may see; nothing changed."),
        },
    )
    def post(self, request: Request) -> Response:
        caller = self.caller
        if caller.is_customer:
            raise exceptions.PermissionDenied("Bulk changes need staff or an API key with tickets:write.")
        incoming = TicketBulkSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        ids = list(dict.fromkeys(values["ids"]))
        tickets = list(self.tickets().filter(pk__in=ids))
        if len(tickets) != len(ids):
            raise exceptions.NotFound("One or more of these tickets do not exist; nothing was changed.")
        change: dict[str, Any] = {}
        if "assignee" in values:
            change["assignee"] = staff_member(values["assignee"], "assignee") if values["assignee"] else None
        updated = tickets_bulk_update(
            tickets=tickets,
            actor=caller.user,
            status=values.get("status"),
            priority=values.get("priority"),
            add_tags=values.get("add_tags"),
            remove_tags=values.get("remove_tags"),
            **change,
        )
        return Response({"updated": updated})


ticket_list_view = TicketViewSet.as_view({"get": "list", "post": "create"})
ticket_detail_view = TicketViewSet.as_view({"get": "retrieve", "patch": "partial_update"})
ticket_escalations_view = TicketEscalationsView.as_view()
ticket_comments_view = TicketCommentsView.as_view()
ticket_time_entries_view = TicketTimeEntriesView.as_view()
ticket_bulk_view = TicketBulkView.as_view()
