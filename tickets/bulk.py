"""Bulk changes: the same change to up to ``BULK_MAX`` tickets in one transaction, all or nothing, audited once per
organization. Each ticket is changed through the single-ticket services (so clocks, activity, events and workflows
behave as they do one at a time), in id order so two bulk changes at once lock their tickets in the same order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from tenancy.audit import audit_record
from tenancy.errors import ServiceValidationError
from tenancy.models import User
from tickets.models import Ticket
from tickets.services import clean_list, ticket_assign, ticket_set_priority, ticket_set_status, ticket_update

BULK_MAX = 500


def tickets_bulk_update(
    *, tickets: list[Ticket], actor: User | None, assignee: Any = ..., status: str | None = None,
    priority: str | None = None, add_tags: list[str] | None = None, remove_tags: list[str] | None = None,
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Apply the same change to up to 500 tickets, all or nothing. ``assignee`` may be None (unassign)."""
    if not tickets:
        raise ServiceValidationError({"ids": ["Name at least one ticket."]})
    if len(tickets) > BULK_MAX:
        raise ServiceValidationError({"ids": [f"At most {BULK_MAX} tickets at a time."]})
    if assignee is ... and status is None and priority is None and not add_tags and not remove_tags:
        raise ServiceValidationError({"detail": ["Say what to change: assignee, status, priority or tags."]})
    errors: dict[str, list[str]] = {}
    adding = set(clean_list(add_tags, "add_tags", errors))
    removing = set(clean_list(remove_tags, "remove_tags", errors))
    for name, given, cleaned in (("add_tags", add_tags, adding), ("remove_tags", remove_tags, removing)):
        if given is not None and not cleaned and name not in errors:
            errors[name] = ["Name at least one tag."]
    if adding & removing:
        errors["remove_tags"] = [f"Tags cannot be added and removed at once: {', '.join(sorted(adding & removing))}."]
    if errors:
        raise ServiceValidationError(errors)
    now = now or timezone.now()
    with transaction.atomic():
        for ticket in sorted(tickets, key=lambda item: str(item.pk)):
            if assignee is not ...:
                ticket_assign(ticket=ticket, assignee=assignee, actor=actor, reason="Bulk change")
            if status is not None:
                ticket_set_status(ticket=ticket, status=status, actor=actor, now=now)
            if priority is not None:
                ticket_set_priority(ticket=ticket, priority=priority, actor=actor, now=now)
            if adding or removing:
                current = Ticket.objects.select_for_update().filter(pk=ticket.pk).values_list("tags", flat=True).get()
                wanted = sorted((set(current) | adding) - removing)
                if wanted != sorted(current):
                    ticket_update(ticket=ticket, actor=actor, tags=wanted)
        by_organization: dict[Any, list[Ticket]] = {}
        for ticket in tickets:
            by_organization.setdefault(ticket.organization_id, []).append(ticket)
        for organization_tickets in by_organization.values():
            changes: dict[str, list[Any]] = {"tickets": [None, str(len(organization_tickets))]}
            if removing:
                changes["removed_tags"] = [None, sorted(removing)]
            audit_record(
                action="tickets.bulk_updated", organization=organization_tickets[0].organization, actor=actor,
                changes=changes,
            )  # fmt: skip
    return len(tickets)
