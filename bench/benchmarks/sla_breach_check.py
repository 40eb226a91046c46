"""One ``check_sla_breaches`` run over 1,000,000 open tickets, next to a bare SQL query selecting the same due
tickets (the floor).

The tickets come from ``bench.tickets_data`` (100 organizations, a 24x7 calendar). A fixed share of them is due now:
P2 tickets opened 3.5 hours ago, whose first-response clock (4 hours) is past 80 %, so the check refreshes their
clocks, records an at-risk notice for each and writes them back. Before each timed run those tickets are made due
again and their notices forgotten, so every run does the same work. The rest are due in the future and must not be
read at all. Due tickets are found through the ``tickets_slacheck`` queue, by the check and the floor alike.
"""

from __future__ import annotations

import statistics
import time

from bench.core import Context, Result
from bench.tickets_data import populate

TICKETS = 1_000_000
QUICK_TICKETS = 50_000
DUE_EVERY = 2_000  # one ticket in 2,000 is due at check time: 500 of 1,000,000
TARGET_RATIO = 3.0
OPEN = ("NEW", "OPEN", "PENDING_CUSTOMER", "ON_HOLD")


def _make_due() -> int:
    """Put the same tickets back to 'due now' (and forget their notices) so each run does the same work."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE tickets_ticket
               SET sla_started_at = now() - interval '210 minutes', first_response_state = 'ok',
                   first_response_due = now() + interval '30 minutes', sla_next_check_at = now() - interval '1 minute',
                   first_response_risk_at = now() - interval '18 minutes',
                   escalation_level = 0, priority = 'P2', first_response_target = interval '4 hours',
                   notices_sent = '{{}}'
             WHERE subject LIKE 'bench %' AND (substring(subject from 7)::int % {DUE_EVERY}) = 0
            RETURNING id
            """  # noqa: S608 - a constant
        )
        due = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "UPDATE tickets_slacheck c SET due_at = t.sla_next_check_at FROM tickets_ticket t "
            "WHERE t.id = c.ticket_id AND t.id = ANY(%s)",
            [due],
        )
        return len(due)


def _floor() -> float:
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.* FROM tickets_ticket t JOIN tickets_slacheck c ON c.ticket_id = t.id "
            "WHERE c.due_at <= now() AND t.status = ANY(%s) ORDER BY c.due_at",
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
    populate(total)
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
