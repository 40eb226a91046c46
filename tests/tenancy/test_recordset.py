"""Many rows in one statement: ``insert_rows`` (COPY on PostgreSQL), ``update_rows`` and ``among``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import FieldDoesNotExist

from billing.models import DocumentCounter, UsageRecord
from billing.services.contracts import ContractTerms, contract_create
from events.models import Event
from tenancy.models import Organization
from tenancy.recordset import among, insert_rows, update_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_insert_rows_writes_every_row_in_one_statement_with_defaults(acme, globex, django_assert_num_queries):
    ids = [uuid.uuid4() for _ in range(3)]
    with django_assert_num_queries(1):  # COPY on PostgreSQL, one INSERT elsewhere: counted either way
        insert_rows(
            Event,
            ["id", "organization", "type", "payload"],
            [
                (ids[0], acme.pk, "invoice.created", {"total": Decimal("10.50"), "on": date(2026, 6, 1)}),
                (ids[1], globex.pk, "invoice.created", {"n": 1}),
                (ids[2], None, "system.ping", {}),
            ],
        )
    rows = {event.pk: event for event in Event.objects.filter(pk__in=ids)}
    assert (rows[ids[0]].organization, rows[ids[0]].type) == (acme, "invoice.created")
    # JSON as DjangoJSONEncoder writes it: decimals and dates as text.
    assert rows[ids[0]].payload == {"total": "10.50", "on": "2026-06-01"}
    assert rows[ids[1]].payload == {"n": 1}
    assert rows[ids[2]].organization is None
    # Fields not named take their defaults: created_at is now, fanned_out_at empty.
    assert {(event.created_at, event.fanned_out_at) for event in rows.values()} == {(NOW, None)}


def test_rows_sharing_one_json_value_each_store_it(acme):
    payload = {"id": "x", "number": "INV-00001"}
    ids = [uuid.uuid4(), uuid.uuid4()]
    insert_rows(Event, ["id", "organization", "type", "payload"], [(pk, acme.pk, "t", payload) for pk in ids])
    assert [event.payload for event in Event.objects.filter(pk__in=ids)] == [payload, payload]


def test_insert_rows_refuses_a_missing_key_and_unknown_fields(acme):
    with pytest.raises(ValueError, match="name the primary key"):
        insert_rows(Event, ["organization", "type"], [(acme.pk, "t")])
    with pytest.raises(FieldDoesNotExist):
        insert_rows(Event, ["id", "fanned"], [(uuid.uuid4(), None)])
    with pytest.raises(ValueError, match=r"no insertable field \['id'\]"):  # numbered by the database
        insert_rows(DocumentCounter, ["id", "kind"], [(1, "invoice")])
    assert not Event.objects.exists()
    insert_rows(Event, ["id"], [])  # nothing to write: no statement


def test_insert_rows_leaves_a_serial_key_to_the_database(acme, globex):
    insert_rows(
        DocumentCounter, ["organization", "kind", "last_number"], [(acme.pk, "invoice", 4), (globex.pk, "x", 0)]
    )
    counters = DocumentCounter.objects.order_by("pk")
    assert [(c.organization_id, c.kind, c.last_number) for c in counters] == [
        (acme.pk, "invoice", 4),
        (globex.pk, "x", 0),
    ]
    assert counters[0].pk < counters[1].pk


def test_update_rows_sets_each_row_its_values(acme, django_assert_num_queries):
    contract = contract_create(
        organization=acme,
        terms=ContractTerms(name="Backup", start_date=date(2026, 3, 1), anchor_day=1),
        lines=[{"description": "GB", "pricing_model": "USAGE", "metric": "gb", "unit_price": "0.10"}],
        activate=True,
    )
    records = [
        UsageRecord.objects.create(
            organization=acme,
            contract=contract,
            metric="gb",
            quantity=Decimal(n),
            recorded_at=NOW,
            idempotency_key=f"k{n}",
        )
        for n in range(3)
    ]
    with django_assert_num_queries(1):
        update_rows(
            UsageRecord, ["quantity", "metric"], [(records[0].pk, Decimal("7.25"), "tb"), (records[2].pk, 0, "gb")]
        )
    assert [(r.quantity, r.metric) for r in UsageRecord.objects.order_by("idempotency_key")] == [
        (Decimal("7.2500"), "tb"),
        (Decimal("1.0000"), "gb"),
        (Decimal("0.0000"), "gb"),
    ]


def test_among_selects_the_rows_whose_key_is_listed(acme, globex, initech):
    key = Organization._meta.pk
    assert key is not None
    chosen = Organization.objects.filter(pk__in=among(key, {acme.pk, initech.pk}))
    assert set(chosen) == {acme, initech}
    assert not Organization.objects.filter(pk__in=among(key, [uuid.uuid4()])).exists()
