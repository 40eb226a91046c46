"""Run Keel's benchmarks on PostgreSQL, print one table and write bench/results.json.

    make bench                              # every benchmark
    .venv/bin/python -m bench.run http_health --quick
    .venv/bin/python -m bench.run --fresh   # drop and re-create the benchmark database first

The server named by DATABASE_URL (default: PostgreSQL on 127.0.0.1 as ``postgres``) gets a dedicated database,
``keel_bench``, migrated before the benchmarks run and kept between runs. Redis is used for cache and broker when
REDIS_URL is set or a Redis answers on 127.0.0.1:6379; otherwise Keel's local fallbacks are.

Adding a benchmark: a module in bench/benchmarks/ with ``run(ctx: Context) -> list[Result]``; see
bench/benchmarks/http_health.py. Each result is a value next to a floor measured in the same run, and a target
for their ratio. The exit status is 1 when any result misses its target.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

if __package__ in (None, ""):  # run as a script (python bench/run.py): make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import benchmarks
from bench.core import ROOT, Context, Result

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_DATABASE = "keel_bench"
RESULTS_FILE = Path(__file__).resolve().parent / "results.json"


def bench_database_url(server_url: str, *, fresh: bool) -> str:
    """Create (or re-create) the benchmark database on the server of ``server_url``; return its URL."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(server_url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit(f"benchmarks run on PostgreSQL; DATABASE_URL is {parts.scheme}://…")
    libpq_url = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    try:
        connection = psycopg.connect(libpq_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise SystemExit(f"cannot reach PostgreSQL at {parts.hostname}:{parts.port or 5432}: {exc}") from exc
    with connection:
        if fresh:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DATABASE))
            )
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DATABASE]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DATABASE)))
    return urlunsplit((parts.scheme, parts.netloc, f"/{BENCH_DATABASE}", parts.query, ""))


def redis_url() -> str | None:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return DEFAULT_REDIS_URL
    except OSError:
        pass
    return None


def migrate(ctx: Context) -> None:
    env = {**ctx.env(), "DJANGO_SETTINGS_MODULE": "msp.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def discover(selected: list[str]) -> list[str]:
    names = sorted(module.name for module in pkgutil.iter_modules(benchmarks.__path__) if not module.ispkg)
    unknown = sorted(set(selected) - set(names))
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(names)}")
    return [name for name in names if not selected or name in selected]


def fmt(number: float) -> str:
    return f"{number:,.1f}" if abs(number) >= 10 else f"{number:.3g}"


def print_table(results: list[Result]) -> None:
    header = ("benchmark", "value", "unit", "floor", "ratio", "target", "ok")
    rows = [
        (
            r.name,
            fmt(r.value),
            r.unit,
            fmt(r.floor),
            f"{r.ratio:.3f}",
            f"{'≥' if r.higher_is_better else '≤'} {r.target:g}",
            "ok" if r.ok else "MISS",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    align = ["<", ">", "<", ">", ">", "<", "<"]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths, strict=True)).rstrip())
    for r in results:
        if r.note:
            print(f"  {r.name}: {r.note}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run Keel's benchmarks.")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds: a smoke test, not numbers")
    parser.add_argument("--fresh", action="store_true", help=f"drop and re-create the {BENCH_DATABASE} database")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE)
    args = parser.parse_args()

    names = discover(args.names)
    database_url = bench_database_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL, fresh=args.fresh)
    with tempfile.TemporaryDirectory(prefix="keel-bench-") as var_dir:
        ctx = Context(database_url=database_url, redis_url=redis_url(), var_dir=Path(var_dir), quick=args.quick)
        print(f"database: {urlsplit(database_url).hostname}/{BENCH_DATABASE} (PostgreSQL)")
        print(f"cache and broker: {'Redis' if ctx.redis_url else 'local memory and filesystem (no Redis found)'}")
        print(f"benchmarks: {', '.join(names)}\n")
        migrate(ctx)
        results: list[Result] = []
        for name in names:
            began = time.monotonic()
            module = importlib.import_module(f"bench.benchmarks.{name}")
            module_results: list[Result] = module.run(ctx)
            results.extend(module_results)
            print(f"  {name}: {len(module_results)} result(s) in {time.monotonic() - began:.1f}s", flush=True)
    print()
    print_table(results)
    args.output.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    missed = [r.name for r in results if not r.ok]
    if missed:
        print(f"missed target: {', '.join(missed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
