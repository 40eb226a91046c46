"""Pulling payments: the payments QuickBooks received since the last pull that pay invoices Keel pushed are recorded
in Keel once (pulling them again changes nothing), partly or in full; payments of other invoices are left alone;
one that cannot be recorded (another currency, an invoice already paid) gives up with the reason. The sandbox
carries a payment from QuickBooks into Keel end to end."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.models import InvoiceStatus, PaymentAttempt
from events.models import Event
from integrations.quickbooks.connection import connection_connect
from integrations.quickbooks.models import QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.providers import sandbox
from integrations.quickbooks.providers.base import Tokens
from integrations.quickbooks.providers.quickbooks import dumps
from integrations.quickbooks.rows import invoice_push_enqueue
from integrations.quickbooks.sync import payments_pull, sync_due_run, sync_run
from tenancy.models import Organization
from tests.integrations.quickbooks.conftest import API, NOW, REALM, issue, query_of

pytestmark = pytest.mark.django_db

D = Decimal


def pushed(invoice: Any, qbo_id: str = "130") -> QboSync:
    return QboSync.objects.create(organization_id=invoice.organization_id, kind=SyncKind.INVOICE,
                                  object_id=str(invoice.pk), qbo_id=qbo_id, state=SyncState.SUCCEEDED)  # fmt: skip


def payment(pays: dict[str, str], *, payment_id: str = "201", currency: str = "AUD",
            updated: str = "2026-03-01T16:30:00-08:00") -> dict[str, Any]:  # fmt: skip
    """A QuickBooks payment paying ``pays`` (QuickBooks invoice id: amount)."""
    lines = [{"Amount": D(amount), "LinkedTxn": [{"TxnId": txn, "TxnType": "Invoice"}]} for txn, amount in pays.items()]
    return {
        "Id": payment_id, "SyncToken": "0", "TxnDate": "2026-03-01", "TotalAmt": sum(D(a) for a in pays.values()),
        "CustomerRef": {"value": "58", "name": "Acme Pty Ltd"}, "CurrencyRef": {"value": currency},
        "Line": lines, "MetaData": {"CreateTime": updated, "LastUpdatedTime": updated},
    }  # fmt: skip


def found(*payments: dict[str, Any]) -> dict[str, Any]:
    """A recorded query reply, numbers written exactly as Intuit writes them."""
    return {"body": dumps({"QueryResponse": {"Payment": list(payments)}, "time": "2026-03-01T17:00:00.000-08:00"}),
            "content_type": "application/json"}  # fmt: skip


def test_a_payment_pulled_twice_pays_the_invoice_once(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    intuit.get(f"{API}/query", **found(payment({"130": "714.34"})))
    assert sync_due_run() == {"pushed": 0, "payments": 1}
    assert sync_due_run() == {"pushed": 0, "payments": 0}
    first, second = (query_of(call)["query"] for call in intuit.calls)
    assert first == (
        "SELECT * FROM Payment WHERE Metadata.LastUpdatedTime >= '2026-03-02T00:00:00+00:00' "
        "ORDERBY Metadata.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 100"
    )
    assert "'2026-03-02T00:30:00+00:00'" in second  # the cursor moved to the payment's change
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.paid_at) == (InvoiceStatus.PAID, D("714.34"), NOW)
    [attempt] = PaymentAttempt.objects.for_org(acme)
    assert (attempt.amount, attempt.status, attempt.trigger) == (D("714.34"), "SUCCEEDED", "external")
    assert Event.objects.filter(type="payment.succeeded").count() == 1
    assert Event.objects.filter(type="invoice.paid").count() == 1
    row = QboSync.objects.get(kind=SyncKind.PAYMENT)
    assert (row.object_id, row.qbo_id, row.organization_id) == (f"{REALM}:201", "201", acme.pk)
    assert row.state == SyncState.SUCCEEDED


def test_a_partial_payment_leaves_the_invoice_open_until_the_rest_arrives(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    intuit.get(f"{API}/query", **found(payment({"130": "400.00"})))
    intuit.get(f"{API}/query", **found(payment({"130": "314.34"}, payment_id="202",
                                               updated="2026-03-01T18:00:00-08:00")))  # fmt: skip
    sync_due_run()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (InvoiceStatus.OPEN, D("400.00"), D("314.34"))
    assert not Event.objects.filter(type="invoice.paid").exists()
    sync_due_run()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.PAID, D("714.34"))


def test_one_payment_of_two_invoices_pays_each_of_them(connection, acme, intuit):
    first, second = issue(acme), issue(acme)
    pushed(first, "130")
    pushed(second, "131")
    intuit.get(f"{API}/query", **found(payment({"130": "714.34", "131": "100.00"})))
    sync_due_run()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == InvoiceStatus.PAID
    assert (second.status, second.amount_paid) == (InvoiceStatus.OPEN, D("100.00"))
    assert PaymentAttempt.objects.for_org(acme).count() == 2


def test_payments_of_invoices_keel_did_not_push_are_left_alone(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    intuit.get(f"{API}/query", **found(payment({"999": "50.00"})))
    assert sync_due_run()["payments"] == 0
    assert not QboSync.objects.filter(kind=SyncKind.PAYMENT).exists()
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0
    connection.refresh_from_db()
    assert connection.payments_pulled_through == NOW - timedelta(minutes=30)


def test_a_payment_in_another_currency_gives_up_with_the_reason(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    intuit.get(f"{API}/query", **found(payment({"130": "714.34"}, currency="USD")))
    sync_due_run()
    row = QboSync.objects.get(kind=SyncKind.PAYMENT)
    assert row.state == SyncState.FAILED and row.last_error == "The payment is in USD but INV-00001 is in AUD."
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0


def test_a_payment_of_an_invoice_keel_already_collected_gives_up(connection, acme, intuit):
    from billing.services.external_payments import invoice_record_external_payment

    invoice = issue(acme)
    pushed(invoice)
    invoice_record_external_payment(invoice=invoice, amount="714.34", reference="bank-1", received_on=NOW.date(),
                                    source="bank")  # fmt: skip
    intuit.get(f"{API}/query", **found(payment({"130": "714.34"})))
    sync_due_run()
    row = QboSync.objects.get(kind=SyncKind.PAYMENT)
    assert row.state == SyncState.FAILED and "nothing left to pay" in row.last_error
    assert PaymentAttempt.objects.for_org(acme).count() == 1


def test_pages_are_read_until_a_short_one(connection, acme, intuit):
    pushed(issue(acme))
    intuit.get(f"{API}/query", **found(payment({"130": "10.00"})))
    intuit.get(f"{API}/query", **found())
    assert payments_pull(page_size=1) == 1
    pages = [query_of(call)["query"].split("STARTPOSITION ")[1] for call in intuit.calls]
    assert pages == ["1 MAXRESULTS 1", "2 MAXRESULTS 1"]


def test_retrying_a_payment_reads_it_again(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    row = QboSync.objects.create(organization=acme, kind=SyncKind.PAYMENT, object_id=f"{REALM}:201", qbo_id="201",
                                 state=SyncState.FAILED)  # fmt: skip
    QboSync.objects.filter(pk=row.pk).update(state=SyncState.PENDING, next_attempt_at=NOW)
    intuit.get(f"{API}/payment/201", body=dumps({"Payment": payment({"130": "714.34"})}),
               content_type="application/json")  # fmt: skip
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_the_sandbox_carries_a_payment_from_quickbooks_into_keel(acme, alice, clock, settings):
    settings.QBO_PROVIDER = "sandbox"
    tokens = Tokens("sbx-access-1", "sbx-refresh-1", 3600, 8726400)
    connection_connect(realm_id=sandbox.REALM_ID, tokens=tokens, actor=None)
    invoice = issue(acme)
    for sync_id in invoice_push_enqueue(organization_id=acme.pk, invoice_id=invoice.pk):
        assert sync_run(sync_id=sync_id) == SyncState.SUCCEEDED
    qbo_invoice = QboSync.objects.get(kind=SyncKind.INVOICE).qbo_id
    assert sandbox.COMPANY["invoice"][qbo_invoice]["TotalAmt"] == D("714.34")
    assert sandbox.COMPANY["customer"][Organization.objects.get(pk=acme.pk).qbo_customer_id]["DisplayName"] == (
        "Acme Pty Ltd"
    )
    clock.shift(timedelta(minutes=5))
    sandbox.payment_receive(invoice_id=qbo_invoice, amount=D("714.34"))
    clock.shift(timedelta(hours=2))  # the sandbox's access token expired meanwhile: it is refreshed
    sync_due_run()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert QboConnection.objects.get().access_token_encrypted


def test_a_failed_pull_is_shown_on_the_connection_and_tried_again_from_the_same_cursor(connection, acme, intuit):
    pushed(issue(acme))
    intuit.get(f"{API}/query", status=503, body="Service Unavailable")
    intuit.get(f"{API}/query", **found())
    sync_due_run()
    connection.refresh_from_db()
    assert connection.last_error == "Pulling payments: QuickBooks is unavailable (HTTP 503)."
    assert connection.payments_pulled_through == NOW - timedelta(hours=1)
    sync_due_run()
    connection.refresh_from_db()
    assert connection.last_error == "" and query_of(intuit.calls[0]) == query_of(intuit.calls[1])


def test_a_pull_quickbooks_throttles_waits_for_the_time_it_names(connection, acme, intuit, clock):
    pushed(issue(acme))
    intuit.get(f"{API}/query", status=429, body="Too Many Requests", headers={"Retry-After": "300"})
    intuit.get(f"{API}/query", **found())
    sync_due_run()
    connection.refresh_from_db()
    assert connection.paused_until == NOW + timedelta(minutes=5)
    assert connection.last_error == "Pulling payments: QuickBooks is unavailable (HTTP 429)."
    clock.shift(timedelta(minutes=4))
    assert sync_due_run() == {"pushed": 0, "payments": 0} and len(intuit.calls) == 1
    clock.shift(timedelta(minutes=1))
    sync_due_run()
    connection.refresh_from_db()
    assert len(intuit.calls) == 2 and connection.last_error == ""
    assert query_of(intuit.calls[0]) == query_of(intuit.calls[1])
