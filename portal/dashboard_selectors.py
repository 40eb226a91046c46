"""What the dashboard shows of an organization, read in one statement.

The dashboard is the page every signed-in person lands on, so its figures come in one round trip from SQL built
once per process (building four ORM queries per request cost more than the database did): the member,
open-invitation, active-API-key, open-ticket and waiting-ticket counts as scalar subqueries and, for people who may
manage the organization, its overdue invoices and latest audit events joined to them. Every part is scoped by the
organization's id, as ``for_org`` would scope it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus
from tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from tenancy.statements import statement_cursor
from tickets.models import Ticket, TicketStatus


@dataclass(frozen=True)
class DashboardFigures:
    member_count: int
    open_invitation_count: int
    active_key_count: int
    open_ticket_count: int  # not resolved or closed
    waiting_ticket_count: int  # waiting on the customer's reply
    # Open invoices past their due date (overdue from the day after it, in the organization's zone); None when not
    # asked for.
    overdue_invoice_count: int | None
    # The latest audit events, newest first (created_at, action, actor_label, target_label); None when not asked for.
    recent_events: list[dict[str, Any]] | None


@functools.cache
def _statement(for_manager: bool) -> str:
    membership, invitation, api_key, audit_event, ticket, invoice = (
        connection.ops.quote_name(model._meta.db_table)
        for model in (Membership, Invitation, ApiKey, AuditEvent, Ticket, Invoice)
    )
    counts = (
        f"(SELECT COUNT(*) FROM {membership} WHERE organization_id = %(org)s), "  # noqa: S608 - model tables
        f"(SELECT COUNT(*) FROM {invitation} WHERE organization_id = %(org)s"
        " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > %(now)s), "
        f"(SELECT COUNT(*) FROM {api_key} WHERE organization_id = %(org)s"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %(now)s)), "
        "t.open_tickets, t.waiting_tickets"
    )
    # Both ticket counts in one pass over the organization's tickets.
    tickets = (
        "(SELECT COUNT(*) FILTER (WHERE status NOT IN (%(resolved)s, %(closed)s)) AS open_tickets, "  # noqa: S608 - a model table
        "COUNT(*) FILTER (WHERE status = %(waiting)s) AS waiting_tickets "
        f"FROM {ticket} WHERE organization_id = %(org)s) AS t"
    )
    if not for_manager:
        return f"SELECT {counts} FROM {tickets}"  # noqa: S608 - model tables
    overdue = (
        f"(SELECT COUNT(*) FROM {invoice} WHERE organization_id = %(org)s"  # noqa: S608 - model tables
        " AND status = %(open_invoice)s AND due_date < %(today)s)"
    )
    # One row with NULL event columns when the organization has no events yet (the LEFT JOIN keeps the counts; the
    # ticket counts are one row whatever the tickets).
    return (
        f"SELECT {counts}, {overdue}, e.created_at, e.action, e.actor_label, e.target_label "  # noqa: S608 - model tables
        f"FROM {tickets} LEFT JOIN ("
        f"SELECT created_at, action, actor_label, target_label FROM {audit_event} WHERE organization_id = %(org)s"
        " ORDER BY created_at DESC LIMIT %(limit)s) AS e ON 1 = 1 "
        "ORDER BY e.created_at DESC"
    )


def _created_at_converter() -> Callable[[Any], datetime]:
    """Turns ``created_at`` as the database driver returns it into what the ORM would (SQLite hands back text)."""
    field = AuditEvent._meta.get_field("created_at")
    column = field.get_col(AuditEvent._meta.db_table)
    converters = connection.ops.get_db_converters(column) + field.get_db_converters(connection)

    def convert(value: Any) -> datetime:
        for converter in converters:
            value = converter(value, column, connection)
        return value

    return convert


def dashboard_figures(organization: Organization, *, now: datetime, recent_events: int | None) -> DashboardFigures:
    """The organization's counts and, when ``recent_events`` is a number (for people who may manage it), its overdue
    invoices and up to that many of its latest audit events (one query either way)."""
    for_manager = recent_events is not None
    params = {
        "org": Membership._meta.get_field("organization").get_db_prep_value(organization.pk, connection),
        "now": Invitation._meta.get_field("expires_at").get_db_prep_value(now, connection),
        "today": Invoice._meta.get_field("due_date").get_db_prep_value(
            timezone.localdate(now, ZoneInfo(organization.timezone)), connection
        ),
        "resolved": TicketStatus.RESOLVED.value,
        "closed": TicketStatus.CLOSED.value,
        "waiting": TicketStatus.PENDING_CUSTOMER.value,
        "open_invoice": InvoiceStatus.OPEN.value,
        "limit": recent_events,
    }
    with statement_cursor() as cursor:
        cursor.execute(_statement(for_manager), params)
        rows = cursor.fetchall()
    members, invitations, keys, open_tickets, waiting_tickets = rows[0][:5]
    if not for_manager:
        return DashboardFigures(members, invitations, keys, open_tickets, waiting_tickets, None, None)
    created_at = _created_at_converter()
    events = [
        {"created_at": created_at(row[6]), "action": row[7], "actor_label": row[8], "target_label": row[9]}
        for row in rows
        if row[6] is not None
    ]
    return DashboardFigures(members, invitations, keys, open_tickets, waiting_tickets, rows[0][5], events)
