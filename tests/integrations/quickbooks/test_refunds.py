"""A refund Keel made of a payment it received (in Stripe) is recorded in QuickBooks as a refund receipt
(``DocNumber`` ``KEEL-R<row>``), paid from the account staff chose and split as the invoice was booked (its share of
tax on the tax item), once per refund even after a lost answer or a repeated report, each with its own amount in
whatever order they go. It waits, spending no attempt, until staff choose the refund account, and goes as soon as
they do; it waits for its payment to be in QuickBooks."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from billing.models import AttemptStatus, AttemptTrigger, Invoice, PaymentAttempt
from billing.services.collection import attempt_refund_record
from events.models import Delivery, Event
from events.services import delivery_run, event_fan_out
from integrations.quickbooks import mapping
from integrations.quickbooks.connection import connection_connect, connection_settings_update
from integrations.quickbooks.models import QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.providers import sandbox
from integrations.quickbooks.providers.base import Tokens
from integrations.quickbooks.providers.quickbooks import dumps
from integrations.quickbooks.rows import invoice_push_enqueue, receipt_push_enqueue, refund_push_enqueue
from integrations.quickbooks.sync import SETTING_WAIT, sync_due_run, sync_run
from tenancy.models import AuditEvent, Organization
from tests.integrations.quickbooks.conftest import API, NOW, body, issue, query_of

pytestmark = pytest.mark.django_db

D = Decimal
INTENT = "pi_3PqRefund"


def known(organization: Organization) -> None:
    Organization.objects.filter(pk=organization.pk).update(qbo_customer_id="58")


def card_paid(invoice: Invoice, *, receipt_pushed: bool = True) -> PaymentAttempt:
    """The invoice paid in full by card; its payment in QuickBooks (id 301) unless ``receipt_pushed`` is False."""
    QboSync.objects.create(organization_id=invoice.organization_id, kind=SyncKind.INVOICE, object_id=str(invoice.pk),
                           qbo_id="130", state=SyncState.SUCCEEDED)  # fmt: skip
    attempt = PaymentAttempt.objects.create(
        organization_id=invoice.organization_id, invoice=invoice, number=1, trigger=AttemptTrigger.AUTOMATIC,
        status=AttemptStatus.SUCCEEDED, amount=D("714.34"), currency="AUD", idempotency_key="k-1",
        payment_intent_id=INTENT, completed_at=NOW,
    )  # fmt: skip
    if receipt_pushed:
        QboSync.objects.create(organization_id=invoice.organization_id, kind=SyncKind.RECEIPT,
                               object_id=str(attempt.pk), qbo_id="301", state=SyncState.SUCCEEDED)  # fmt: skip
    return attempt


def refunded(total: str) -> None:
    """Stripe reports ``total`` refunded of the payment so far; the QuickBooks handler runs, as the outbox would."""
    attempt_refund_record(payment_intent_id=INTENT, refunded=D(total))
    for event in Event.objects.filter(type="payment.refunded"):  # fanning out and running again change nothing
        event_fan_out(event_id=event.pk)
    for delivery in Delivery.objects.filter(handler="integrations.quickbooks.payment_refunded"):
        delivery_run(delivery_id=delivery.pk)


def choose_account(connection: QboConnection, account: str = "35") -> None:
    QboConnection.objects.filter(pk=connection.pk).update(refund_account_id=account)


def found(*receipts: dict[str, Any]) -> dict[str, Any]:
    return {"body": dumps({"QueryResponse": {"RefundReceipt": list(receipts)} if receipts else {}}),
            "content_type": "application/json"}  # fmt: skip


def refund_receipt(row: QboSync, *, services: str, tax: str, note: str) -> dict[str, Any]:
    return {
        "DocNumber": f"KEEL-R{row.pk}", "TxnDate": "2026-03-02", "CustomerRef": {"value": "58"},
        "CurrencyRef": {"value": "AUD"}, "DepositToAccountRef": {"value": "35"},
        "GlobalTaxCalculation": "NotApplicable",
        "PrivateNote": note,
        "Line": [
            {"DetailType": "SalesItemLineDetail", "Amount": D(services), "Description": "Refund",
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": D(services)}},
            {"DetailType": "SalesItemLineDetail", "Amount": D(tax), "Description": "Refund of GST 10%",
             "SalesItemLineDetail": {"ItemRef": {"value": "1"}, "Qty": 1, "UnitPrice": D(tax)}},
        ],
    }  # fmt: skip


def test_a_refund_is_recorded_in_quickbooks_as_a_refund_receipt_split_as_the_invoice_was(connection, acme, intuit):
    known(acme)
    choose_account(connection)
    attempt = card_paid(issue(acme))
    refunded("100.00")
    row = QboSync.objects.get(kind=SyncKind.REFUND)
    assert row.object_id == f"{attempt.pk}:10000:10000"
    intuit.get(f"{API}/query", **found())
    intuit.post(f"{API}/refundreceipt", json={"RefundReceipt": {"Id": "410", "SyncToken": "0"}})
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    lookup, made = intuit.calls
    assert query_of(lookup)["query"] == (
        f"SELECT * FROM RefundReceipt WHERE DocNumber = 'KEEL-R{row.pk}' AND CustomerRef = '58' "  # noqa: S608
        "STARTPOSITION 1 MAXRESULTS 1"
    )
    # 100.00 back of a 714.34 invoice holding 64.94 of GST: 9.09 of it was tax.
    assert body(made) == refund_receipt(
        row, services="90.91", tax="9.09",
        note=f"Refund made in Keel ({INTENT}) of INV-00001, attempt 1: 100.00 of 714.34.",
    )  # fmt: skip
    row.refresh_from_db()
    assert (row.qbo_id, row.state) == ("410", SyncState.SUCCEEDED)


def test_each_refund_of_a_payment_goes_once_with_its_own_amount_whatever_the_order(connection, acme, intuit):
    known(acme)
    choose_account(connection)
    card_paid(issue(acme))
    refunded("100.00")
    refunded("150.00")
    refunded("150.00")  # Stripe told again: nothing new
    first, second = QboSync.objects.filter(kind=SyncKind.REFUND).order_by("pk")
    assert QboSync.objects.filter(kind=SyncKind.REFUND).count() == 2
    intuit.get(f"{API}/query", **found())
    intuit.post(f"{API}/refundreceipt", json={"RefundReceipt": {"Id": "411", "SyncToken": "0"}})
    intuit.post(f"{API}/refundreceipt", json={"RefundReceipt": {"Id": "412", "SyncToken": "0"}})
    assert sync_run(sync_id=second.pk) == SyncState.SUCCEEDED  # the later refund pushed first
    assert sync_run(sync_id=first.pk) == SyncState.SUCCEEDED
    later, earlier = (body(call) for call in intuit.calls if call.request.method == "POST")
    assert sum(line["Amount"] for line in later["Line"]) == D("50.00")
    assert [line["Amount"] for line in later["Line"]] == [D("45.45"), D("4.55")]
    assert sum(line["Amount"] for line in earlier["Line"]) == D("100.00")
    assert (later["DocNumber"], earlier["DocNumber"]) == (f"KEEL-R{second.pk}", f"KEEL-R{first.pk}")


def test_a_refund_receipt_whose_answer_was_lost_is_adopted_not_made_twice(connection, acme, intuit):
    known(acme)
    choose_account(connection)
    card_paid(issue(acme))
    refunded("714.34")
    row = QboSync.objects.get(kind=SyncKind.REFUND)
    intuit.get(f"{API}/query", **found({"Id": "410", "SyncToken": "0", "DocNumber": f"KEEL-R{row.pk}"}))
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    assert len(intuit.calls) == 1  # no POST
    row.refresh_from_db()
    assert row.qbo_id == "410"


def test_a_refund_waits_without_spending_attempts_until_staff_choose_the_account(
    connection, acme, intuit, clock, django_capture_on_commit_callbacks
):
    known(acme)
    card_paid(issue(acme))
    refunded("100.00")
    row = QboSync.objects.get(kind=SyncKind.REFUND)
    assert sync_run(sync_id=row.pk) == "waiting"
    row.refresh_from_db()
    assert (row.state, row.attempts, row.next_attempt_at) == (SyncState.PENDING, 0, NOW + SETTING_WAIT)
    assert row.last_error.startswith("Choose the QuickBooks account refunds are paid from")
    assert len(intuit.calls) == 0
    intuit.get(f"{API}/query", **found())
    intuit.post(f"{API}/refundreceipt", json={"RefundReceipt": {"Id": "410", "SyncToken": "0"}})
    with django_capture_on_commit_callbacks(execute=True):
        connection_settings_update(connection=connection, default_item_id="1", tax_item_id="", refund_account_id=" 35 ",
                                   actor=None)  # fmt: skip
    row.refresh_from_db()
    assert (row.state, row.qbo_id, row.attempts) == (SyncState.SUCCEEDED, "410", 1)
    assert body(intuit.calls[1])["DepositToAccountRef"] == {"value": "35"}
    assert AuditEvent.objects.get(action="quickbooks.settings_changed").changes == {"refund_account_id": ["", "35"]}


def test_a_refund_waits_for_its_payment_to_be_in_quickbooks(connection, acme, intuit):
    known(acme)
    choose_account(connection)
    attempt = card_paid(issue(acme), receipt_pushed=False)
    refunded("100.00")
    receipt = QboSync.objects.get(kind=SyncKind.RECEIPT)  # the handler asked for the payment too
    assert (receipt.object_id, receipt.state) == (str(attempt.pk), SyncState.PENDING)
    row = QboSync.objects.get(kind=SyncKind.REFUND)
    assert sync_run(sync_id=row.pk) == SyncState.RETRYING
    row.refresh_from_db()
    assert row.last_error == "The payment of INV-00001 is not in QuickBooks yet; its refund waits for it."
    assert len(intuit.calls) == 0


def test_a_refund_row_is_made_once_however_often_it_is_asked_for(connection, acme):
    known(acme)
    attempt = card_paid(issue(acme))
    ask = {"organization_id": acme.pk, "attempt_id": attempt.pk, "invoice_id": attempt.invoice_id,
           "refunded_total": D("20.50"), "amount": D("20.50")}  # fmt: skip
    asked = [refund_push_enqueue(**ask) for _ in range(2)]
    assert asked[0] == asked[1]
    assert QboSync.objects.get(kind=SyncKind.REFUND).object_id == f"{attempt.pk}:2050:2050"


@pytest.mark.parametrize("amount", ["0.01", "0.05", "9.99", "100.00", "333.33", "714.33", "714.34"])
def test_a_refund_receipt_totals_exactly_what_went_back(amount):
    tax = mapping.cents(D(amount) * D("64.94") / D("714.34"))
    doc = mapping.RefundDoc(reference="KEEL-R1", refunded_on=NOW.date(), amount=D(amount), tax=tax, tax_label="GST",
                            tax_rate=D("10.00"), currency="AUD", note="")  # fmt: skip
    lines = mapping.refund_body(doc, customer_id="58", item_id="1", tax_item_id="9", account_id="35")["Line"]
    assert sum(line["Amount"] for line in lines) == D(amount)
    assert all(line["Amount"] > 0 for line in lines)
    assert [line["SalesItemLineDetail"]["ItemRef"]["value"] for line in lines] == ["1", "9"][: len(lines)]


def test_the_sandbox_carries_a_refund_into_quickbooks_once(acme, clock, settings):
    settings.QBO_PROVIDER = "sandbox"
    connection = connection_connect(realm_id=sandbox.REALM_ID, tokens=Tokens("sbx-access-1", "sbx-refresh-1", 3600,
                                                                             8726400), actor=None)  # fmt: skip
    invoice = issue(acme)
    for sync_id in invoice_push_enqueue(organization_id=acme.pk, invoice_id=invoice.pk):
        sync_run(sync_id=sync_id)
    attempt = PaymentAttempt.objects.create(
        organization=acme, invoice=invoice, number=1, trigger=AttemptTrigger.AUTOMATIC, status=AttemptStatus.SUCCEEDED,
        amount=D("714.34"), currency="AUD", idempotency_key="k-1", payment_intent_id=INTENT, completed_at=NOW,
    )  # fmt: skip
    for sync_id in receipt_push_enqueue(organization_id=acme.pk, attempt_id=attempt.pk, invoice_id=invoice.pk):
        sync_run(sync_id=sync_id)
    connection_settings_update(connection=connection, default_item_id="", tax_item_id="", refund_account_id="2",
                               actor=None)  # fmt: skip
    refunded("250.00")
    clock.shift(timedelta(minutes=1))
    sync_due_run()
    sync_due_run()
    [receipt] = sandbox.COMPANY["refundreceipt"].values()
    assert sum(D(str(line["Amount"])) for line in receipt["Line"]) == D("250.00")
    assert receipt["DepositToAccountRef"] == {"value": "2"}
    assert QboSync.objects.get(kind=SyncKind.REFUND).qbo_id == receipt["Id"]
