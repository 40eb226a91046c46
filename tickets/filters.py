"""Filters of the ticket list API: ``?status=OPEN,NEW&priority=P1&assignee=<id>|none&organization=<slug>
&sla_state=at_risk&q=printer&ordering=-priority``.

``sla_state`` reads the states stored on the ticket, which every change and the SLA check (every 15 minutes) keep
current. ``q`` is ``tickets.search``: full-text search over the subject, the description and the public replies.
"""

from __future__ import annotations

import uuid
from typing import Any

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from tickets.models import ClockState, Priority, Ticket, TicketStatus
from tickets.search import ticket_search

ORDERINGS = {
    "created": ("created_at",),
    "priority": ("priority",),
    "resolution_due": ("resolution_due",),
}


class ChoiceInFilter(django_filters.BaseInFilter, django_filters.ChoiceFilter):
    """A comma-separated list of choices: ``?status=NEW,OPEN``."""


class TicketFilter(django_filters.FilterSet):
    status = ChoiceInFilter(choices=TicketStatus.choices, help_text="One status or several, comma-separated: NEW,OPEN.")
    priority = ChoiceInFilter(choices=Priority.choices, help_text="One priority or several, comma-separated: P1,P2.")
    assignee = django_filters.CharFilter(
        method="filter_assignee", help_text="A staff member's id, or `none` for unassigned tickets."
    )
    organization = django_filters.CharFilter(
        field_name="organization__slug", help_text="An organization's slug (partner keys acting for several)."
    )
    sla_state = django_filters.ChoiceFilter(
        choices=ClockState.choices, method="filter_sla_state", help_text="Either clock is in this state."
    )
    q = django_filters.CharFilter(
        method="filter_q", help_text="Full-text search over subject, description and public replies."
    )
    ordering = django_filters.ChoiceFilter(
        choices=[(name, name) for key in ORDERINGS for name in (key, f"-{key}")],
        method="filter_ordering",
        help_text="created, priority or resolution_due; prefix - for descending. Default: -created.",
    )

    class Meta:
        model = Ticket
        fields: list[str] = []

    @extend_schema_field({"oneOf": [{"type": "string", "format": "uuid"}, {"type": "string", "enum": ["none"]}]})
    def filter_assignee(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        value = value.strip()
        if value.lower() == "none":
            return queryset.filter(assignee__isnull=True)
        try:
            return queryset.filter(assignee_id=uuid.UUID(value))
        except ValueError:
            raise ValidationError({"assignee": ["A staff member's id, or none."]}) from None

    def filter_sla_state(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        return queryset.filter(Q(first_response_state=value) | Q(resolution_state=value))

    def filter_q(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        return ticket_search(queryset, value)

    def filter_ordering(self, queryset: QuerySet[Ticket], name: str, value: str) -> QuerySet[Ticket]:
        descending = value.startswith("-")
        order: list[Any] = [
            F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
            for field in ORDERINGS[value.lstrip("-")]
        ]
        # Ties (same priority) keep a stable page order: newest first, then by id.
        return queryset.order_by(*order, "-created_at", "id")
