"""A ticket's history in one call, for tests that need many tickets at known SLA times (the SLA reports)."""

from __future__ import annotations

from datetime import datetime

from tenancy.models import Organization, User
from tickets.models import Ticket, TicketStatus
from tickets.services import comment_add, ticket_assign, ticket_create, ticket_set_status


def ticket(
    organization: Organization,
    priority: str,
    opened: datetime,
    *,
    replied: datetime | None = None,
    resolved: datetime | None = None,
    waiting: tuple[datetime, datetime] | None = None,
    assignee: User | None = None,
) -> Ticket:
    """Opened at ``opened``; then assigned, answered, waiting on the customer between two times, resolved."""
    created = ticket_create(organization=organization, subject=f"{priority} {opened}", priority=priority, now=opened)
    if assignee is not None:
        ticket_assign(ticket=created, assignee=assignee)
    if replied is not None:
        comment_add(ticket=created, body="On it", by_staff=True, now=replied)
    if waiting is not None:
        ticket_set_status(ticket=created, status=TicketStatus.PENDING_CUSTOMER, now=waiting[0])
        ticket_set_status(ticket=created, status=TicketStatus.OPEN, now=waiting[1])
    if resolved is not None:
        ticket_set_status(ticket=created, status=TicketStatus.RESOLVED, now=resolved)
    return created
