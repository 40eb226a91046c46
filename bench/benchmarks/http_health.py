"""Requests per second of ``GET /health`` next to a bare Django view on the same gunicorn server.

/health runs three dependency checks (a database round trip, a cache write/read/delete and a broker connection), so
it cannot match the bare view; it should stay within a small constant factor of it.
"""

from __future__ import annotations

import statistics

from bench.core import Context, Result, http_load

TARGET_RATIO = 0.25


def run(ctx: Context) -> list[Result]:
    requests = 600 if ctx.quick else 3000
    rounds = 1 if ctx.quick else 3
    with ctx.gunicorn(workers=2) as port:
        for path in ("/bench/bare", "/health"):  # warm-up: imports, connections, caches
            http_load(port, path, requests=300, threads=4, time_cap=15)

        def rps(path: str) -> float:
            return http_load(port, path, requests=requests, threads=4, time_cap=20).per_second

        # Alternate the two in each round so drift in machine load hits both alike.
        floors: list[float] = []
        values: list[float] = []
        for _ in range(rounds):
            floors.append(rps("/bench/bare"))
            values.append(rps("/health"))
    return [
        Result(
            name="GET /health",
            value=statistics.median(values),
            unit="req/s",
            floor=statistics.median(floors),
            target=TARGET_RATIO,
            note="floor: a bare Django view (full middleware) on the same gunicorn (2 sync workers), 4 client threads",
        )
    ]
