"""One ``check_sla_breaches`` run over 1,000,000 open tickets, next to a bare SQL query selecting the same due
tickets (the floor).

The tickets are made by one ``INSERT … SELECT generate_series`` in 100 organizations on a 24x7 calendar (so the
numbers do not depend on the hour the benchmark runs). A fixed share of them is due now: P2 tickets opened 3.5 hours
ago, whose first-response clock (4 hours) is past 80 %, so the check refreshes their clocks, records an at-risk
notice for each and writes them back. Before each timed run those tickets are made due again and their notices
deleted, so every run does the same work. The rest are due in the future and must not be read at all.
"""

from __future__ import annotations

import statistics
import time

from bench.core import Context, Result

TICKETS = 1_000_000
QUICK_TICKETS = 50_000
DUE_EVERY = 2_000  # one ticket in 2,000 is due at check time: 500 of 1,000,000
ORGANIZATIONS = 100
TARGET_RATIO = 3.0
OPEN = ("NEW", "OPEN", "PENDING_CUSTOMER", "ON_HOLD")


def _populate(total: int) -> None:
    from django.db import connection

    from tenancy.models import Organization
    from tickets.models import BusinessCalendar, SlaNotice, Ticket

    if Ticket.objects.filter(subject__startswith="bench ").count() == total:
        return
    SlaNotice.objects.all().delete()
    Ticket.objects.all().delete()
    orgs = [
        Organization.objects.get_or_create(slug=f"bench-{n}", defaults={"name": f"Bench {n}", "tier": "PREMIUM"})[0]
        for n in range(ORGANIZATIONS)
    ]
    calendar, _ = BusinessCalendar.objects.get_or_create(name="bench 24x7", defaults={"always_open": True,
                                                                                      "timezone": "UTC"})  # fmt: skip
    org_ids = "ARRAY[" + ",".join(f"'{org.pk}'::uuid" for org in orgs) + "]"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO tickets_ticket (
                id, organization_id, number, subject, description, requester_email, status, priority, category,
                required_skills, channel, tags, routing_reason, sla_calendar_id, sla_always_on, sla_started_at,
                first_response_target, resolution_target, at_risk_ratio, sla_pauses, first_response_due,
                resolution_due, first_response_state, resolution_state, sla_remaining_seconds, sla_next_check_at,
                escalation_level, created_at, updated_at)
            SELECT gen_random_uuid(), ({org_ids})[1 + n %% {ORGANIZATIONS}], 1000 + n / {ORGANIZATIONS},
                   'bench ' || n, 'generated', '', 'OPEN', 'P2', '', '[]', 'api', '[]', '', %s, false,
                   now() - interval '1 hour', interval '4 hours', interval '16 hours', 0.80, '[]',
                   now() + interval '3 hours', now() + interval '15 hours', 'ok', 'ok', 10800,
                   now() + interval '1 hour' + (n %% 1000) * interval '1 minute', 0, now(), now()
            FROM generate_series(1, %s) AS n
            """,  # noqa: S608 - the only interpolated values are our own generated uuids and integer constants
            [calendar.pk, total],
        )
        cursor.execute("ANALYZE tickets_ticket")


def _make_due() -> int:
    """Put the same tickets back to 'due now' (and forget their notices) so each run does the same work."""
    from django.db import connection

    from tickets.models import SlaNotice

    SlaNotice.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE tickets_ticket
               SET sla_started_at = now() - interval '210 minutes', first_response_state = 'ok',
                   first_response_due = now() + interval '30 minutes', sla_next_check_at = now() - interval '1 minute',
                   escalation_level = 0, priority = 'P2', first_response_target = interval '4 hours'
             WHERE subject LIKE 'bench %' AND (substring(subject from 7)::int % {DUE_EVERY}) = 0
            """  # noqa: S608 - a constant
        )
        return int(cursor.rowcount)


def _floor() -> float:
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM tickets_ticket WHERE sla_next_check_at <= now() AND status = ANY(%s) "
            "ORDER BY sla_next_check_at",
            [list(OPEN)],
        )
        rows = cursor.fetchall()
    elapsed = time.perf_counter() - began
    assert rows, "no due tickets"
    return elapsed


def run(ctx: Context) -> list[Result]:
    ctx.setup_django()
    from tickets.escalation import sla_check

    total = QUICK_TICKETS if ctx.quick else TICKETS
    began = time.perf_counter()
    _populate(total)
    print(f"    {total:,} tickets ready in {time.perf_counter() - began:.0f}s", flush=True)
    rounds = 2 if ctx.quick else 5
    checks: list[float] = []
    floors: list[float] = []
    acted = 0
    for _ in range(rounds):
        due = _make_due()
        floors.append(_floor())
        started = time.perf_counter()
        report = sla_check()
        checks.append(time.perf_counter() - started)
        acted = report.checked
        assert report.checked == due, (report.checked, due)
    check, floor = statistics.median(checks), statistics.median(floors)
    return [
        Result(
            name=f"check_sla_breaches, {acted} due of {total:,} open",
            value=check * 1000,
            unit="ms",
            floor=floor * 1000,
            target=TARGET_RATIO,
            higher_is_better=False,
            note=f"floor: SELECT * of the same {acted} due tickets (bare SQL, same index); median of {rounds} runs; "
            f"{check / max(acted, 1) * 1000:.2f} ms per due ticket",
        )
    ]
