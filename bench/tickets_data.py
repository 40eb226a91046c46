"""The ticket rows the support benchmarks share: ``total`` open tickets in 100 organizations of one partner, made by
one ``INSERT … SELECT generate_series`` on a 24x7 calendar (so the numbers do not depend on the hour a benchmark
runs). Creation times are spread one minute apart, newest first, like a real desk's history.

Populating 1,000,000 rows takes about a minute, so the rows are kept between benchmarks and runs: ``populate`` does
nothing when the database already holds exactly ``total`` benchmark tickets.
"""

from __future__ import annotations

from typing import Any

ORGANIZATIONS = 100
PARTNER_SLUG = "bench-partner"


def organizations() -> list[Any]:
    """The benchmark organizations, all managed by the benchmark partner (created on first use)."""
    from tenancy.models import Organization, Partner

    partner, _ = Partner.objects.get_or_create(slug=PARTNER_SLUG, defaults={"name": "Bench partner"})
    orgs = []
    for n in range(ORGANIZATIONS):
        org, _ = Organization.objects.get_or_create(
            slug=f"bench-{n}", defaults={"name": f"Bench {n}", "tier": "PREMIUM", "partner": partner}
        )
        if org.partner_id != partner.pk:
            org.partner = partner
            org.save(update_fields=["partner"])
        orgs.append(org)
    return orgs


def populate(total: int) -> bool:
    """Make the database hold exactly ``total`` benchmark tickets; True when it had to (re)write them."""
    from django.db import connection

    from tickets.models import BusinessCalendar, Ticket

    orgs = organizations()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tenancy_organization")  # the planner must know the partner has 100 organizations
    if Ticket.objects.count() == total and Ticket.objects.filter(subject__startswith="bench ").count() == total:
        return False
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tickets_ticket CASCADE")
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
                resolution_due, first_response_state, resolution_state, sla_remaining_seconds, first_response_risk_at,
                resolution_risk_at, sla_next_check_at, escalation_level, notices_sent, created_at, updated_at)
            SELECT gen_random_uuid(), ({org_ids})[1 + n %% {ORGANIZATIONS}], 1000 + n / {ORGANIZATIONS},
                   'bench ' || n, 'generated', '', 'OPEN', 'P2', '', '[]', 'api', '[]', '', %s, false,
                   now() - interval '1 hour', interval '4 hours', interval '16 hours', 0.80, '[]',
                   now() + interval '3 hours', now() + interval '15 hours', 'ok', 'ok', 10800,
                   now() + interval '132 minutes', now() + interval '708 minutes',
                   now() + interval '1 hour' + (n %% 1000) * interval '1 minute', 0, '{{}}',
                   now() - n * interval '1 minute', now()
            FROM generate_series(1, %s) AS n
            """,  # noqa: S608 - the only interpolated values are our own generated uuids and integer constants
            [calendar.pk, total],
        )
        cursor.execute(
            "INSERT INTO tickets_slacheck (ticket_id, due_at) "
            "SELECT id, sla_next_check_at FROM tickets_ticket WHERE sla_next_check_at IS NOT NULL"
        )
        cursor.execute("ANALYZE tickets_ticket")
        cursor.execute("ANALYZE tickets_slacheck")
    return True
