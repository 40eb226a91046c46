"""What the dashboard shows of an organization, read in one statement.

The dashboard is the page every signed-in person lands on, so its figures come in one round trip from SQL built
once per process (building four ORM queries per request cost more than the database did): the member,
open-invitation and active-API-key counts as scalar subqueries and, for people who may manage the organization, its
latest audit events joined to them. Every part is scoped by the organization's id, as ``for_org`` would scope it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from tenancy.models import ApiKey, AuditEvent, Invitation, Membership, Organization
from tenancy.statements import statement_cursor


@dataclass(frozen=True)
class DashboardFigures:
    member_count: int
    open_invitation_count: int
    active_key_count: int
    # The latest audit events, newest first (created_at, action, actor_label, target_label); None when not asked for.
    recent_events: list[dict[str, Any]] | None


@functools.cache
def _statement(with_events: bool) -> str:
    membership, invitation, api_key, audit_event = (
        connection.ops.quote_name(model._meta.db_table) for model in (Membership, Invitation, ApiKey, AuditEvent)
    )
    counts = (
        f"(SELECT COUNT(*) FROM {membership} WHERE organization_id = %(org)s), "  # noqa: S608 - model tables
        f"(SELECT COUNT(*) FROM {invitation} WHERE organization_id = %(org)s"
        " AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > %(now)s), "
        f"(SELECT COUNT(*) FROM {api_key} WHERE organization_id = %(org)s"
        " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > %(now)s))"
    )
    if not with_events:
        return f"SELECT {counts}"
    # One row with NULL event columns when the organization has no events yet (the LEFT JOIN keeps the counts).
    return (
        f"SELECT {counts}, e.created_at, e.action, e.actor_label, e.target_label "  # noqa: S608 - model tables
        "FROM (SELECT 1 AS one) AS o LEFT JOIN ("
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
    """The organization's counts and, when ``recent_events`` is a number, up to that many of its latest audit
    events (one query either way)."""
    with_events = recent_events is not None
    params = {
        "org": Membership._meta.get_field("organization").get_db_prep_value(organization.pk, connection),
        "now": Invitation._meta.get_field("expires_at").get_db_prep_value(now, connection),
        "limit": recent_events,
    }
    with statement_cursor() as cursor:
        cursor.execute(_statement(with_events), params)
        rows = cursor.fetchall()
    members, invitations, keys = rows[0][:3]
    events = None
    if with_events:
        created_at = _created_at_converter()
        events = [
            {"created_at": created_at(row[3]), "action": row[4], "actor_label": row[5], "target_label": row[6]}
            for row in rows
            if row[3] is not None
        ]
    return DashboardFigures(members, invitations, keys, events)
