"""One recurring invoice run, ``invoices_generate(through=...)``, over 10,000 active contracts that each owe one
period, next to loading the same invoice and invoice line rows with ``COPY`` (the floor).

The contracts come from ``bench.billing_data``: 500 organizations, three lines each, every cycle, timing and pricing
model; the run creates 10,000 invoices with about 40,000 lines (a graduated tier line gives one invoice line per tier
used). Each run starts from a clean slate: the benchmark organizations and everything they own are deleted and
written again, so a rerun on the kept database does the same work; the ticket rows of the other benchmarks are left
alone.

The run is the one the nightly job makes: ``BILLING_GENERATION_WORKERS`` workers (2 by default), each on its own
connection and share of the organizations; the note gives the same run with one worker too. Statements are counted
on every connection the run opens, ``COPY`` included.

Three rows:
- the run's wall time against the floor: the invoice and line rows the run wrote, read back and loaded with
  psycopg's ``COPY`` into scratch tables made like ``billing_invoice`` and ``billing_invoiceline`` (same columns,
  defaults, checks, indexes and foreign keys) and committed, the median of three loads;
- queries per invoice at 10,000 contracts against the same run over a fresh 1,000 before it (it must not grow);
- the invoices a second run right after the first creates: none, or the row fails. Its time is in the note.

Invoices that go out get their email (or automatic charge) job queued after their batch commits. Those jobs go to a
queue of their own on the benchmark's broker, which no worker reads and which is deleted afterwards; queueing them
is part of the timed run, as it is in production.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench import billing_data
from bench.core import Context, Result

CONTRACTS = 10_000
SMALL = 1_000
ORGANIZATIONS = 500
QUICK_CONTRACTS = 2_000
QUICK_SMALL = 200
QUICK_ORGANIZATIONS = 100
TARGET_RATIO = 5.0
QUERY_GROWTH = 1.1
QUEUE = "bench-invoice-generation"
SCRATCH = {"billing_invoice": "bench_floor_invoice", "billing_invoiceline": "bench_floor_invoiceline"}


@dataclass
class QueryCounter:
    """A ``connection.execute_wrapper``: counts the statements sent and the seconds spent waiting on them, on every
    connection it is attached to (the run's workers each have their own)."""

    queries: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            with self.lock:
                self.seconds += time.perf_counter() - began
                self.queries += 1

    def attach(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        """``connection_created`` receiver: count on the connections the run's worker threads open."""
        connection.execute_wrappers.append(self)


@dataclass
class Run:
    created: int
    seconds: float
    queries: int
    db_seconds: float  # waiting on the database
    cpu_seconds: float  # this process's own work

    @property
    def per_invoice(self) -> float:
        return self.queries / self.created if self.created else float("inf")


def _generate(workers: int | None = None) -> Run:
    from django.db import connection
    from django.db.backends.signals import connection_created

    from billing.services.invoicing import invoices_generate

    counter = QueryCounter()
    connection_created.connect(counter.attach)
    try:
        with connection.execute_wrapper(counter):
            began, cpu = time.perf_counter(), time.process_time()
            report = invoices_generate(through=billing_data.THROUGH, workers=workers)
            elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        connection_created.disconnect(counter.attach)
    return Run(report.created, elapsed, counter.queries, db_seconds=counter.seconds, cpu_seconds=cpu)


@contextmanager
def _private_queue() -> Iterator[None]:
    """Send every Celery job of this process to a queue no worker reads, and delete that queue afterwards."""
    from kombu import Connection, Exchange, Queue

    from msp.celery import app

    def route(routes: Any, default: str) -> None:
        app.conf.task_routes, app.conf.task_default_queue = routes, default
        app.amqp.flush_routes()  # the router keeps the routes it was made with: make it again
        vars(app.amqp).pop("router", None)

    routes, default = app.conf.task_routes, app.conf.task_default_queue
    route({"*": {"queue": QUEUE}}, QUEUE)
    try:
        yield
    finally:
        route(routes, default)
        with Connection(app.conf.broker_url, transport_options=app.conf.broker_transport_options) as broker:
            queue = Queue(QUEUE, Exchange(QUEUE, type="direct"), routing_key=QUEUE)(broker.default_channel)
            queue.declare()  # a channel deletes only the bindings it knows of
            queue.delete()


def _populate(total: int, organizations: int) -> float:
    began = time.perf_counter()
    billing_data.clean()
    usage = billing_data.populate(total, organizations)
    elapsed = time.perf_counter() - began
    print(
        f"    {total:,} contracts ({3 * total:,} lines, {usage:,} usage records) over {organizations} organizations "
        f"ready in {elapsed:.1f}s",
        flush=True,
    )
    return elapsed


def _floor(organization_ids: list[Any], rounds: int) -> tuple[float, int, int]:
    """Seconds to COPY the benchmark organizations' invoice and line rows into empty scratch tables like the real
    ones and commit (the median of ``rounds``), and the numbers of rows."""
    from django.db import connection

    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    with connection.cursor() as cursor:
        for table in SCRATCH:
            cursor.execute(f"SELECT * FROM {table} WHERE organization_id = ANY(%s)", [organization_ids])  # noqa: S608
            rows[table] = ([column.name for column in cursor.description], cursor.fetchall())
    timings = []
    for _ in range(rounds):
        _create_scratch()
        try:
            timings.append(_copy(rows))
        finally:
            _drop_scratch()
    return statistics.median(timings), len(rows["billing_invoice"][1]), len(rows["billing_invoiceline"][1])


def _create_scratch() -> None:
    """Empty tables with the columns, defaults, checks, indexes and (deferred, as Django declares them) foreign keys
    of billing_invoice and billing_invoiceline; a line's invoice is the scratch invoice."""
    from django.db import connection, transaction

    invoice, line = SCRATCH["billing_invoice"], SCRATCH["billing_invoiceline"]
    deferred = "DEFERRABLE INITIALLY DEFERRED"
    _drop_scratch()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, scratch in SCRATCH.items():
            cursor.execute(f"CREATE TABLE {scratch} (LIKE {table} INCLUDING ALL)")
        cursor.execute(
            f"ALTER TABLE {invoice} ADD FOREIGN KEY (organization_id) REFERENCES tenancy_organization (id) {deferred}, "
            f"ADD FOREIGN KEY (contract_id) REFERENCES billing_contract (id) {deferred}"
        )
        cursor.execute(
            f"ALTER TABLE {line} ADD FOREIGN KEY (organization_id) REFERENCES tenancy_organization (id) {deferred}, "
            f"ADD FOREIGN KEY (invoice_id) REFERENCES {invoice} (id) {deferred}, "
            f"ADD FOREIGN KEY (contract_line_id) REFERENCES billing_contractline (id) {deferred}"
        )


def _copy(rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    from django.db import connection, transaction

    began = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, scratch in SCRATCH.items():
            columns, values = rows[table]
            with cursor.cursor.copy(f"COPY {scratch} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
    return time.perf_counter() - began


def _drop_scratch() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {', '.join(SCRATCH.values())}")


def run(ctx: Context) -> list[Result]:
    ctx.setup_django()
    total = QUICK_CONTRACTS if ctx.quick else CONTRACTS
    small_total = QUICK_SMALL if ctx.quick else SMALL
    organizations = QUICK_ORGANIZATIONS if ctx.quick else ORGANIZATIONS
    _drop_scratch()
    with _private_queue():
        _populate(small_total, organizations)
        small = _generate()
        assert small.created == small_total, (small.created, small_total)
        populate_seconds = _populate(total, organizations)
        first = _generate()
        assert first.created == total, (first.created, total)
        second = _generate()
        _populate(total, organizations)
        single = _generate(workers=1)
        assert single.created == total, (single.created, total)
    floor, invoices, lines = _floor(billing_data.organization_ids(), rounds=3)
    assert invoices == total, (invoices, total)
    rate = first.created / first.seconds
    return [
        Result(
            name=f"invoices_generate, {total:,} contracts due",
            value=first.seconds,
            unit="s",
            floor=floor,
            target=TARGET_RATIO,
            higher_is_better=False,
            note=f"{first.created:,} invoices, {rate:,.0f} invoices/s, {first.per_invoice:.4f} queries per invoice; "
            f"{first.db_seconds:.2f}s waiting on {first.queries} queries (summed over the workers' connections), "
            f"{first.cpu_seconds:.2f}s of CPU in this process; with one worker: {single.seconds:.2f}s "
            f"({single.seconds / floor:.1f}x the floor, {single.db_seconds:.2f}s waiting on {single.queries} queries, "
            f"{single.cpu_seconds:.2f}s of CPU); floor: COPY of the same {invoices:,} invoice and {lines:,} line rows "
            f"into scratch tables like billing_invoice and billing_invoiceline, committed (median of 3); "
            f"populating took {populate_seconds:.1f}s",
        ),
        Result(
            name="invoices_generate, queries per invoice",
            value=first.per_invoice,
            unit="queries",
            floor=small.per_invoice,
            target=QUERY_GROWTH,
            higher_is_better=False,
            note=f"{first.queries} queries for {first.created:,} invoices; floor: {small.queries} queries for "
            f"{small.created:,} invoices of a fresh {small_total:,} contracts ({small.seconds:.2f}s, "
            f"{small.created / small.seconds:,.0f} invoices/s)",
        ),
        Result(
            name="invoices_generate again, invoices created",
            value=second.created,
            unit="invoices",
            floor=first.created,
            target=0,
            higher_is_better=False,
            note=f"a second run right after the first: {second.created} created in {second.seconds * 1000:.1f} ms "
            f"({second.queries} queries); floor: the first run's count; must be 0",
        ),
    ]
