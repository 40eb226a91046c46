"""The partner API's ticket list: median latency of ``GET /api/tickets/`` (the first page of 50, newest first, every
ticket's SLA block read live) with 1,000,000 tickets in the database, next to the same call with 1,000 (the floor).

The caller is a partner key that sees all 100 benchmark organizations, the widest list there is (a list across
organizations is never answered from the list cache, so every request runs its queries). Two more rows do
the same for a filtered call (``?status=OPEN&priority=P2&sla_state=ok``) and a full-text search matching one ticket
(``?q=742``, through the GIN indexes), neither of which may scan the table.

The server is gunicorn (2 sync workers) on the benchmark database; requests are sequential on one connection, so
the number is what one caller waits. The rows come from ``bench.tickets_data`` and stay at 1,000,000 afterwards
for the SLA check benchmark.
"""

from __future__ import annotations

import statistics

from bench.core import Context, Result, http_latencies
from bench.tickets_data import PARTNER_SLUG, organizations, populate

LARGE = 1_000_000
QUICK_LARGE = 50_000
SMALL = 1_000
TARGET_RATIO = 2.0
CALLS = {
    "GET /api/tickets/": "/api/tickets/",
    "GET /api/tickets/?status&priority&sla_state": "/api/tickets/?status=OPEN&priority=P2&sla_state=ok",
    "GET /api/tickets/?q (full-text search)": "/api/tickets/?q=742",
}


def _partner_key() -> str:
    from tenancy.models import ApiKey, Partner
    from tenancy.services.api_keys import api_key_create

    partner = Partner.objects.get(slug=PARTNER_SLUG)
    ApiKey.objects.filter(partner=partner, name="bench").delete()
    _, raw = api_key_create(name="bench", scopes=["read", "tickets:read"], partner=partner)
    return raw


def _medians(port: int, key: str, requests: int) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    medians = {}
    for name, path in CALLS.items():
        http_latencies(port, path, requests=20, headers=headers)  # warm-up: plans, connections, caches
        medians[name] = statistics.median(http_latencies(port, path, requests=requests, headers=headers))
    return medians


def run(ctx: Context) -> list[Result]:
    ctx.setup_django()
    large = QUICK_LARGE if ctx.quick else LARGE
    requests = 50 if ctx.quick else 300
    organizations()
    key = _partner_key()
    populate(SMALL)
    with ctx.gunicorn(workers=2) as port:
        small = _medians(port, key, requests)
        populate(large)
        big = _medians(port, key, requests)
    return [
        Result(
            name=f"{name}, {large:,} tickets",
            value=big[name] * 1000,
            unit="ms",
            floor=small[name] * 1000,
            target=TARGET_RATIO,
            higher_is_better=False,
            note=f"floor: the same call with {SMALL:,} tickets; median of {requests} sequential requests, "
            "partner key over 100 organizations, page of 50",
        )
        for name in CALLS
    ]
