"""The breach check's batch step on PostgreSQL, as one statement.

A clock's reading changes by itself only at instants the last full reading stored: ``*_risk_at`` (a running clock
turns at risk), ``*_due`` (it breaches) and, once breached, ``due + target / 2`` (the next escalation level). So a due
ticket's new states, notices and next check follow from its row alone, with the rules of ``clocks.next_change`` and
``escalation.wanted``, and no business-hours arithmetic. The statement claims a batch of due tickets
(``FOR UPDATE SKIP LOCKED``), works that out for each, writes the tickets and the queue, and returns one row per
claimed ticket saying what to announce.

Tickets this cannot settle are claimed and left as they are, with ``by_hand`` set, for the Python path
(``escalation._check_batch``): those due their second escalation level (the priority goes up, so every target and
due time moves), those whose row predates stored risk instants, and those queued by ``SlaCheck.recheck`` (their
calendar changed since the clocks were read: the queue entry then differs from the ticket's ``sla_next_check_at``).
Every ticket service re-reads the clocks it changes, so otherwise the stored instants are current.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connection

from tickets.models import OPEN_STATUSES

# Before any key: the first page of a run.
START = (datetime.fromisoformat("0001-01-01T00:00:00+00:00"), uuid.UUID(int=0))

# Per clock (``{c}`` is ``first_response`` or ``resolution``): its state now, from the stored one and its instants.
_STATE = """
    CASE WHEN t.{c}_state IN ('ok', 'at_risk') AND t.{c}_due <= %(now)s THEN 'breached'
         WHEN t.{c}_state = 'ok' AND t.{c}_risk_at <= %(now)s THEN 'at_risk'
         ELSE t.{c}_state END"""
# Per clock, in ``plan``: when it next changes by itself at the new level (``clocks.next_change``).
_NEXT = """
    CASE r.{c} WHEN 'ok' THEN r.{c}_risk_at
               WHEN 'at_risk' THEN r.{c}_due
               WHEN 'breached' THEN CASE r.level_now WHEN 0 THEN r.{c}_due
                                                     WHEN 1 THEN r.{c}_due + r.{c}_target / 2 END
    END"""
# Per clock: still breached half a target after the due time, with that notice not given yet.
_SECOND_LEVEL = "(r.{c} = 'breached' AND %(now)s >= r.{c}_due + r.{c}_target / 2)"

STATEMENT = f"""
WITH claimed AS (
    -- Every column comes from this locking scan: it returns each row's latest version, where a second scan of the
    -- table would see the statement's snapshot, from before a concurrent run that has just committed.
    SELECT t.id, c.due_at AS queued_at, t.organization_id, t.number, t.subject, t.priority, t.assignee_id,
           t.escalation_level AS level, t.notices_sent AS sent, t.sla_next_check_at,
           t.first_response_state, t.first_response_due, t.first_response_target, t.first_response_risk_at,
           t.resolution_state, t.resolution_due, t.resolution_target, t.resolution_risk_at
      FROM tickets_ticket t JOIN tickets_slacheck c ON c.ticket_id = t.id
     WHERE c.due_at <= %(now)s AND t.status = ANY(%(open)s) AND (c.due_at, c.ticket_id) > (%(after_at)s, %(after_id)s)
     ORDER BY c.due_at, c.ticket_id
     LIMIT %(batch)s
       FOR UPDATE OF t SKIP LOCKED
), readings AS (
    SELECT t.*,
           {_STATE.format(c="first_response")} AS first_response,
           {_STATE.format(c="resolution")} AS resolution,
           (t.first_response_state = 'ok' AND t.first_response_risk_at IS NULL)
           OR (t.resolution_state = 'ok' AND t.resolution_risk_at IS NULL)
           OR t.queued_at IS DISTINCT FROM t.sla_next_check_at AS unplanned
      FROM claimed t
), notices AS (
    SELECT r.*,
           r.first_response = 'at_risk' AND NOT r.sent ? 'first_response_at_risk' AS first_response_at_risk,
           r.resolution = 'at_risk' AND NOT r.sent ? 'resolution_at_risk' AS resolution_at_risk,
           'breached' IN (r.first_response, r.resolution) AND NOT r.sent ? 'breach_level_1' AS breach,
           r.unplanned OR (NOT r.sent ? 'breach_level_2' AND ({_SECOND_LEVEL.format(c="first_response")}
                                                             OR {_SECOND_LEVEL.format(c="resolution")})) AS by_hand
      FROM readings r
), levels AS (
    SELECT n.*, CASE WHEN n.breach THEN GREATEST(n.level, 1) ELSE n.level END AS level_now FROM notices n
), plan AS (
    SELECT r.*, LEAST({_NEXT.format(c="first_response")}, {_NEXT.format(c="resolution")}) AS next_at FROM levels r
), written AS (
    UPDATE tickets_ticket t
       SET first_response_state = p.first_response,
           resolution_state = p.resolution,
           first_response_risk_at = CASE WHEN p.first_response = 'ok' THEN p.first_response_risk_at END,
           resolution_risk_at = CASE WHEN p.resolution = 'ok' THEN p.resolution_risk_at END,
           escalation_level = p.level_now,
           notices_sent = p.sent || jsonb_strip_nulls(jsonb_build_object(
               'first_response_at_risk', CASE WHEN p.first_response_at_risk THEN %(sent_at)s::text END,
               'resolution_at_risk', CASE WHEN p.resolution_at_risk THEN %(sent_at)s::text END,
               'breach_level_1', CASE WHEN p.breach THEN %(sent_at)s::text END)),
           sla_next_check_at = p.next_at,
           updated_at = %(now)s
      FROM plan p
     WHERE t.id = p.id AND NOT p.by_hand
), filed AS (
    INSERT INTO tickets_slacheck (ticket_id, due_at)
    SELECT p.id, p.next_at FROM plan p WHERE NOT p.by_hand AND p.next_at IS NOT NULL
        ON CONFLICT (ticket_id) DO UPDATE SET due_at = EXCLUDED.due_at
), unfiled AS (
    DELETE FROM tickets_slacheck c USING plan p WHERE c.ticket_id = p.id AND NOT p.by_hand AND p.next_at IS NULL
)
SELECT p.id, to_json(p.queued_at) #>> '{{}}', p.by_hand,
       p.first_response_at_risk, p.resolution_at_risk, p.breach, p.first_response = 'breached',
       p.organization_id, p.number, p.subject, p.priority, u.email,
       to_json(p.first_response_due) #>> '{{}}', to_json(p.resolution_due) #>> '{{}}'
  FROM plan p LEFT JOIN tenancy_user u ON u.id = p.assignee_id
 ORDER BY p.queued_at, p.id
"""  # noqa: S608 - the interpolations are this module's constant fragments


class Advanced(NamedTuple):
    """One claimed ticket: what the statement did to it, and what to announce."""

    id: uuid.UUID
    queued_at: datetime
    by_hand: bool  # claimed, left alone: the Python path decides
    first_response_at_risk: bool
    resolution_at_risk: bool
    breach: bool  # breach level 1, newly
    first_response_breached: bool  # which clock the breach is told about: the first response's, else resolution's
    organization_id: uuid.UUID
    number: int
    subject: str
    priority: str
    assignee_email: str | None
    first_response_due: datetime | None
    resolution_due: datetime | None


def _instant(text: str | None) -> datetime | None:
    # Instants come back as JSON text: parsing it is cheaper than the driver's per-column loader.
    return None if text is None else datetime.fromisoformat(text)


def advance(now: datetime, after: tuple[datetime, uuid.UUID], batch: int) -> list[Advanced]:
    """Claim and settle the next ``batch`` due tickets after ``after``, soonest first."""
    params: dict[str, Any] = {
        "now": now,
        "open": sorted(OPEN_STATUSES),
        "after_at": after[0],
        "after_id": after[1],
        "batch": batch,
        "sent_at": now.isoformat(),
    }
    with connection.cursor() as cursor:
        cursor.execute(STATEMENT, params)
        rows = cursor.fetchall()
    return [
        Advanced._make([row[0], _instant(row[1]) or now, *row[2:12], _instant(row[12]), _instant(row[13])])
        for row in rows
    ]
