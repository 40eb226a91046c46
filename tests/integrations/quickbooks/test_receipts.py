"""Keel's side of the books in QuickBooks: a payment Keel received (a card charge it collected, a transfer staff
recorded) is applied to its invoice there as a QuickBooks payment (``PaymentRefNum`` ``KEEL-<invoice>-<attempt>``),
once, even after a lost answer; it waits for its invoice to be there; a payment QuickBooks received itself is never
pushed back, and the pull leaves Keel's own payments alone. A voided invoice is voided in QuickBooks; one QuickBooks
never had is left out."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.models import AttemptStatus, AttemptTrigger, InvoiceStatus, PaymentAttempt
from billing.services.external_payments import invoice_record_external_payment
from billing.services.invoices import invoice_void
from events.models import Delivery, Event
from events.services import delivery_run, event_fan_out
from integrations.quickbooks.connection import connection_connect
from integrations.quickbooks.models import QboSync, SyncKind, SyncState
from integrations.quickbooks.providers import sandbox
from integrations.quickbooks.providers.base import Tokens
from integrations.quickbooks.providers.quickbooks import dumps
from integrations.quickbooks.pushes import receipt_doc
from integrations.quickbooks.rows import invoice_push_enqueue
from integrations.quickbooks.sync import payments_pull, sync_due_run, sync_run
from tenancy.models import Organization
from tests.integrations.quickbooks.conftest import API, NOW, body, issue, query_of

pytestmark = pytest.mark.django_db

D = Decimal


def known(organization: Organization) -> None:
    Organization.objects.filter(pk=organization.pk).update(qbo_customer_id="58")


def pushed(invoice: Any, qbo_id: str = "130") -> QboSync:
    return QboSync.objects.create(organization_id=invoice.organization_id, kind=SyncKind.INVOICE,
                                  object_id=str(invoice.pk), qbo_id=qbo_id, state=SyncState.SUCCEEDED)  # fmt: skip


def handled(event_type: str, handler: str) -> None:
    """Fan the last event of ``event_type`` out and run the QuickBooks handler's delivery, as the outbox would."""
    event_fan_out(event_id=Event.objects.filter(type=event_type).latest("created_at").pk)
    delivery_run(delivery_id=Delivery.objects.get(handler=f"integrations.quickbooks.{handler}").pk)


def paid_by_transfer(invoice: Any) -> PaymentAttempt:
    attempt = invoice_record_external_payment(invoice=invoice, amount="714.34", reference="bank-1",
                                              received_on=NOW.date(), source="bank")  # fmt: skip
    handled("payment.succeeded", "payment_succeeded")
    return attempt


def found(*payments: dict[str, Any]) -> dict[str, Any]:
    return {"body": dumps({"QueryResponse": {"Payment": list(payments)} if payments else {}}),
            "content_type": "application/json"}  # fmt: skip


RECEIPT = {
    "CustomerRef": {"value": "58"}, "CurrencyRef": {"value": "AUD"}, "TotalAmt": D("714.34"), "TxnDate": "2026-03-02",
    "PaymentRefNum": "KEEL-1-1", "PrivateNote": "Payment recorded in Keel for INV-00001, attempt 1.",
    "Line": [{"Amount": D("714.34"), "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
}  # fmt: skip


def test_a_payment_received_in_keel_is_applied_to_its_invoice_in_quickbooks(connection, acme, intuit):
    known(acme)
    invoice = issue(acme)
    pushed(invoice)
    paid_by_transfer(invoice)
    intuit.get(f"{API}/query", **found())
    intuit.post(f"{API}/payment", json={"Payment": {"Id": "301", "SyncToken": "0"}})
    row = QboSync.objects.get(kind=SyncKind.RECEIPT)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    lookup, made = intuit.calls
    assert query_of(lookup)["query"] == (
        "SELECT * FROM Payment WHERE CustomerRef = '58' AND TxnDate = '2026-03-02' STARTPOSITION 1 MAXRESULTS 1000"
    )
    assert body(made) == RECEIPT
    row.refresh_from_db()
    assert (row.qbo_id, row.state) == ("301", SyncState.SUCCEEDED)


def test_a_payment_whose_answer_was_lost_is_adopted_not_made_twice(connection, acme, intuit):
    known(acme)
    invoice = issue(acme)
    pushed(invoice)
    paid_by_transfer(invoice)
    earlier = {**RECEIPT, "Id": "301", "SyncToken": "0"}
    other = {**RECEIPT, "Id": "299", "PaymentRefNum": "cheque 1182"}
    intuit.get(f"{API}/query", **found(other, earlier))
    row = QboSync.objects.get(kind=SyncKind.RECEIPT)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    assert len(intuit.calls) == 1  # no POST
    row.refresh_from_db()
    assert row.qbo_id == "301"


def test_a_payment_waits_for_its_invoice_to_be_in_quickbooks(connection, acme, intuit):
    known(acme)
    invoice = issue(acme)
    paid_by_transfer(invoice)
    row = QboSync.objects.get(kind=SyncKind.RECEIPT)
    invoice_row = QboSync.objects.get(kind=SyncKind.INVOICE)  # the handler asked for the invoice too
    assert invoice_row.state == SyncState.PENDING
    assert sync_run(sync_id=row.pk) == SyncState.RETRYING
    row.refresh_from_db()
    assert row.last_error == "INV-00001 is not in QuickBooks yet; its payment waits for it."
    assert len(intuit.calls) == 0


def test_a_payment_quickbooks_received_is_not_pushed_back(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    payment = {
        "Id": "201", "SyncToken": "0", "TxnDate": "2026-03-01", "TotalAmt": D("714.34"),
        "CustomerRef": {"value": "58"}, "CurrencyRef": {"value": "AUD"},
        "Line": [{"Amount": D("714.34"), "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
        "MetaData": {"CreateTime": "2026-03-01T16:30:00-08:00", "LastUpdatedTime": "2026-03-01T16:30:00-08:00"},
    }  # fmt: skip
    intuit.get(f"{API}/query", **found(payment))
    assert payments_pull() == 1
    handled("payment.succeeded", "payment_succeeded")
    assert not QboSync.objects.filter(kind=SyncKind.RECEIPT).exists()


def test_the_pull_leaves_alone_a_payment_keel_pushed(connection, acme, intuit):
    invoice = issue(acme)
    pushed(invoice)
    ours = {
        **RECEIPT,
        "Id": "301",
        "SyncToken": "0",
        "MetaData": {"CreateTime": "2026-03-01T16:30:00-08:00", "LastUpdatedTime": "2026-03-01T16:30:00-08:00"},
    }
    intuit.get(f"{API}/query", **found(ours))
    assert payments_pull() == 0
    assert not QboSync.objects.filter(kind=SyncKind.PAYMENT).exists()
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (InvoiceStatus.OPEN, D(0))


def test_a_card_payment_says_so_in_its_note(acme):
    invoice = issue(acme)
    attempt = PaymentAttempt.objects.create(
        organization=acme, invoice=invoice, number=2, trigger=AttemptTrigger.AUTOMATIC, status=AttemptStatus.SUCCEEDED,
        amount=D("714.34"), currency="AUD", idempotency_key="k-2", payment_intent_id="pi_3Pq",
        completed_at=NOW + timedelta(hours=13),  # 01:00 on Tuesday in Sydney
    )  # fmt: skip
    doc = receipt_doc(attempt, invoice)
    assert (doc.reference, doc.received_on.isoformat(), doc.amount) == ("KEEL-1-2", "2026-03-03", D("714.34"))
    assert doc.note == "Card payment collected by Keel (pi_3Pq) for INV-00001, attempt 2."


# -- voids -------------------------------------------------------------------------------------------------------------


def test_a_voided_invoice_is_voided_in_quickbooks(connection, acme, intuit):
    known(acme)
    invoice = issue(acme)
    pushed(invoice)
    invoice_void(invoice=invoice, reason="Issued twice")
    handled("invoice.voided", "invoice_voided")
    intuit.get(f"{API}/invoice/130", json={"Invoice": {"Id": "130", "SyncToken": "3", "TotalAmt": 714.34}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "4", "TotalAmt": 0,
                                                    "PrivateNote": "Voided"}})  # fmt: skip
    row = QboSync.objects.get(kind=SyncKind.INVOICE)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    voided = intuit.calls[1]
    assert query_of(voided)["operation"] == "void"
    assert body(voided) == {"Id": "130", "SyncToken": "3"}


def test_an_invoice_voided_before_quickbooks_had_it_is_left_out(connection, acme, intuit):
    invoice = issue(acme)
    rows = invoice_push_enqueue(organization_id=acme.pk, invoice_id=invoice.pk)  # not pushed yet
    invoice_void(invoice=invoice, reason="Wrong customer")
    handled("invoice.voided", "invoice_voided")
    invoice_row = QboSync.objects.get(kind=SyncKind.INVOICE)
    assert sync_run(sync_id=invoice_row.pk) == SyncState.SUCCEEDED
    invoice_row.refresh_from_db()
    assert invoice_row.qbo_id == "" and invoice_row.pk in rows
    assert len(intuit.calls) == 0


def test_the_sandbox_carries_keels_payments_and_voids_into_quickbooks_once(acme, clock, settings):
    settings.QBO_PROVIDER = "sandbox"
    connection_connect(realm_id=sandbox.REALM_ID, tokens=Tokens("sbx-access-1", "sbx-refresh-1", 3600, 8726400),
                       actor=None)  # fmt: skip
    paid, voided = issue(acme), issue(acme)
    for invoice in (paid, voided):
        for sync_id in invoice_push_enqueue(organization_id=acme.pk, invoice_id=invoice.pk):
            sync_run(sync_id=sync_id)
    paid_by_transfer(paid)
    invoice_void(invoice=voided, reason="Issued twice")
    handled("invoice.voided", "invoice_voided")
    clock.shift(timedelta(minutes=1))
    sync_due_run()
    sync_due_run()  # the pull sees Keel's own payment and leaves it alone
    [payment] = sandbox.COMPANY["payment"].values()
    qbo_paid = QboSync.objects.get(kind=SyncKind.INVOICE, object_id=str(paid.pk)).qbo_id
    qbo_voided = QboSync.objects.get(kind=SyncKind.INVOICE, object_id=str(voided.pk)).qbo_id
    assert payment["PaymentRefNum"] == "KEEL-1-1" and payment["Line"][0]["LinkedTxn"][0]["TxnId"] == qbo_paid
    assert sandbox.COMPANY["invoice"][qbo_voided]["TotalAmt"] == 0
    assert PaymentAttempt.objects.for_org(acme).count() == 1
