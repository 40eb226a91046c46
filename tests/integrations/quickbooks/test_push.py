"""Pushing to QuickBooks: an organization becomes a customer (its id kept on the organization; an existing customer of
the same name adopted), a finalized invoice becomes a QuickBooks invoice to the cent, and pushing it again updates it
with its SyncToken instead of making another, even after a lost answer. Outages are retried after 1 min, 5 min,
30 min, 2 h and 6 h (or the longer wait QuickBooks names in Retry-After, at most 6 h), then the row gives up; a
refusal gives up at once. QuickBooks asking Keel to slow down stops the run until the wait is over."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from events.models import Delivery, Event
from events.services import delivery_run, event_fan_out
from integrations.quickbooks.connection import connection_disconnect
from integrations.quickbooks.models import QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.rows import invoice_push_enqueue, sync_enqueue
from integrations.quickbooks.sync import BACKOFF, sync_due_run, sync_run
from tenancy.models import Organization
from tenancy.services import invoice_emails_update, organization_update
from tests.integrations.quickbooks.conftest import API, NOW, body, fault, issue, query_of

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def billed(acme, alice):
    """Acme, with Alice receiving its invoices."""
    return acme


def customer_row(organization: Organization) -> QboSync:
    return sync_enqueue(kind=SyncKind.CUSTOMER, organization_id=organization.pk, object_id=organization.pk)


def invoice_row(invoice) -> QboSync:
    return sync_enqueue(kind=SyncKind.INVOICE, organization_id=invoice.organization_id, object_id=invoice.pk)


def known_customer(organization: Organization, qbo_id: str = "58") -> None:
    Organization.objects.filter(pk=organization.pk).update(qbo_customer_id=qbo_id)


def invoice_lines(item: str = "1") -> list[dict]:
    def line(description, quantity, unit_price, amount, item_id=item):
        detail = {"ItemRef": {"value": item_id}, "Qty": D(quantity), "UnitPrice": D(unit_price)}
        return {"DetailType": "SalesItemLineDetail", "Amount": D(amount), "Description": description,
                "SalesItemLineDetail": detail}  # fmt: skip

    return [
        line("Managed services, 12 users", "12", "49.95", "599.40"),
        line("Backup, 1.5 TB", "1.5", "33.33", "50.00"),
        line("GST 10%", "1", "64.94", "64.94"),
    ]


# -- customers ---------------------------------------------------------------------------------------------------------


def test_an_organization_becomes_a_customer_and_keeps_its_id(connection, billed, intuit):
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "0", "DisplayName": "Acme Pty Ltd"}})
    row = customer_row(billed)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    [call] = intuit.calls
    assert body(call) == {
        "DisplayName": "Acme Pty Ltd",
        "CompanyName": "Acme Pty Ltd",
        "CurrencyRef": {"value": "AUD"},
        "PrimaryEmailAddr": {"Address": "alice@acme.test"},
    }
    assert call.request.headers["Authorization"].startswith("Bearer ")
    assert call.request.headers["Accept"] == "application/json"
    billed.refresh_from_db()
    row.refresh_from_db()
    assert billed.qbo_customer_id == "58" and (row.state, row.qbo_id, row.attempts) == (SyncState.SUCCEEDED, "58", 1)


def test_a_customer_quickbooks_already_has_by_that_name_is_adopted(connection, billed, intuit):
    duplicate = fault("6240", "Duplicate Name Exists Error", "The name supplied already exists. : Acme Pty Ltd")
    intuit.post(f"{API}/customer", status=400, json=duplicate)
    intuit.get(f"{API}/query", json={"QueryResponse": {"Customer": [{"Id": "77", "DisplayName": "Acme Pty Ltd"}]}})
    assert sync_run(sync_id=customer_row(billed).pk) == SyncState.SUCCEEDED
    assert query_of(intuit.calls[1])["query"] == (
        "SELECT * FROM Customer WHERE DisplayName = 'Acme Pty Ltd' STARTPOSITION 1 MAXRESULTS 1"
    )
    billed.refresh_from_db()
    assert billed.qbo_customer_id == "77"


def test_a_name_a_vendor_uses_gives_up_with_the_reason(connection, billed, intuit):
    intuit.post(f"{API}/customer", status=400, json=fault("6240", "Duplicate Name Exists Error"))
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    row = customer_row(billed)
    assert sync_run(sync_id=row.pk) == SyncState.FAILED
    row.refresh_from_db()
    assert "vendor, an employee or an inactive customer" in row.last_error
    billed.refresh_from_db()
    assert billed.qbo_customer_id == ""


def test_a_renamed_customer_is_renamed_in_quickbooks(connection, billed, alice, intuit):
    known_customer(billed)
    billed.refresh_from_db()
    intuit.get(f"{API}/customer/58", json={"Customer": {"Id": "58", "SyncToken": "2"}})
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "3"}})
    organization_update(organization=billed, actor=alice, name="Acme Group")
    event_fan_out(event_id=Event.objects.get(type="organization.updated").pk)
    delivery_run(delivery_id=Delivery.objects.get(handler="integrations.quickbooks.organization_updated").pk)
    sync_run(sync_id=QboSync.objects.get(kind=SyncKind.CUSTOMER).pk)
    assert body(intuit.calls[1]) == {
        "DisplayName": "Acme Group", "CompanyName": "Acme Group", "PrimaryEmailAddr": {"Address": "alice@acme.test"},
        "Id": "58", "SyncToken": "2", "sparse": True,
    }  # fmt: skip


def test_new_invoice_addresses_become_the_customers_email_in_quickbooks(connection, billed, alice, intuit):
    known_customer(billed)
    billed.refresh_from_db()
    intuit.get(f"{API}/customer/58", json={"Customer": {"Id": "58", "SyncToken": "4"}})
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "5"}})
    invoice_emails_update(organization=billed, actor=alice, emails=["accounts@acme.test", "ap@acme.test"])
    event_fan_out(event_id=Event.objects.get(type="organization.updated").pk)
    delivery_run(delivery_id=Delivery.objects.get(handler="integrations.quickbooks.organization_updated").pk)
    sync_run(sync_id=QboSync.objects.get(kind=SyncKind.CUSTOMER).pk)
    assert body(intuit.calls[1]) == {
        "DisplayName": "Acme Pty Ltd", "CompanyName": "Acme Pty Ltd",
        "PrimaryEmailAddr": {"Address": "accounts@acme.test"},
        "Id": "58", "SyncToken": "4", "sparse": True,
    }  # fmt: skip


# -- invoices ----------------------------------------------------------------------------------------------------------


def test_an_invoice_is_pushed_with_its_lines_and_tax_to_the_cent(connection, billed, intuit):
    known_customer(billed)
    invoice = issue(billed, memo="Thank you for your business.")
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "0", "TotalAmt": 714.34}})
    row = invoice_row(invoice)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    lookup, create = intuit.calls
    assert query_of(lookup)["query"] == (
        "SELECT * FROM Invoice WHERE DocNumber = 'INV-00001' AND CustomerRef = '58' STARTPOSITION 1 MAXRESULTS 1"
    )
    sent = body(create)
    assert sent == {
        "DocNumber": "INV-00001",
        "TxnDate": "2026-03-02",
        "DueDate": "2026-03-16",
        "CustomerRef": {"value": "58"},
        "CurrencyRef": {"value": "AUD"},
        "GlobalTaxCalculation": "NotApplicable",
        "Line": invoice_lines(),
        "PrivateNote": f"Keel invoice {invoice.pk}",
        "CustomerMemo": {"value": "Thank you for your business."},
    }
    assert sum(line["Amount"] for line in sent["Line"]) == invoice.total == D("714.34")
    row.refresh_from_db()
    assert (row.state, row.qbo_id) == (SyncState.SUCCEEDED, "130")


def test_the_tax_line_goes_to_the_tax_item_when_one_is_chosen(connection, billed, intuit):
    QboConnection.objects.filter(pk=connection.pk).update(tax_item_id="9")
    known_customer(billed)
    invoice = issue(billed)
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "0"}})
    sync_run(sync_id=invoice_row(invoice).pk)
    lines = body(intuit.calls[1])["Line"]
    assert [line["SalesItemLineDetail"]["ItemRef"]["value"] for line in lines] == ["1", "1", "9"]


def test_an_invoice_pushed_again_is_updated_with_its_sync_token(connection, billed, intuit):
    known_customer(billed)
    invoice = issue(billed)
    row = invoice_row(invoice)
    QboSync.objects.filter(pk=row.pk).update(qbo_id="130", state=SyncState.SUCCEEDED)
    sync_enqueue(kind=SyncKind.INVOICE, organization_id=billed.pk, object_id=invoice.pk, again=True)
    intuit.get(f"{API}/invoice/130", json={"Invoice": {"Id": "130", "SyncToken": "3"}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "4"}})
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    sent = body(intuit.calls[1])
    assert (sent["Id"], sent["SyncToken"], sent["sparse"]) == ("130", "3", True)
    assert sent["Line"] == invoice_lines()
    assert len(intuit.calls) == 2  # no lookup, no second invoice


def test_an_invoice_created_before_an_answer_was_lost_is_adopted_not_duplicated(connection, billed, intuit):
    known_customer(billed)
    invoice = issue(billed)
    intuit.get(f"{API}/query", json={"QueryResponse": {"Invoice": [{"Id": "131", "DocNumber": "INV-00001"}]}})
    intuit.get(f"{API}/invoice/131", json={"Invoice": {"Id": "131", "SyncToken": "0"}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "131", "SyncToken": "1"}})
    row = invoice_row(invoice)
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED
    assert body(intuit.calls[2])["Id"] == "131"
    row.refresh_from_db()
    assert row.qbo_id == "131"


def test_an_invoice_of_a_new_customer_creates_the_customer_first(connection, billed, intuit):
    invoice = issue(billed)
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "0"}})
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "0"}})
    ids = invoice_push_enqueue(organization_id=billed.pk, invoice_id=invoice.pk)
    assert [QboSync.objects.get(pk=pk).kind for pk in ids] == [SyncKind.CUSTOMER, SyncKind.INVOICE]
    assert [sync_run(sync_id=pk) for pk in ids] == [SyncState.SUCCEEDED, SyncState.SUCCEEDED]
    assert body(intuit.calls[-1])["CustomerRef"] == {"value": "58"}
    assert len([call for call in intuit.calls if call.request.url.startswith(f"{API}/customer")]) == 1


def test_the_service_item_is_found_or_created_once(connection, billed, intuit):
    QboConnection.objects.filter(pk=connection.pk).update(default_item_id="")
    known_customer(billed)
    invoice = issue(billed, tax_rate="0")
    intuit.get(f"{API}/query", json={"QueryResponse": {}})  # no "Keel services" item, then no invoice INV-00001
    intuit.get(f"{API}/query", json={"QueryResponse": {"Account": [{"Id": "79", "AccountType": "Income"}]}})
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    intuit.post(f"{API}/item", json={"Item": {"Id": "21", "Name": "Keel services"}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "0"}})
    assert sync_run(sync_id=invoice_row(invoice).pk) == SyncState.SUCCEEDED
    queries = [query_of(call)["query"] for call in intuit.calls if "/query" in call.request.url]
    assert queries[0] == "SELECT * FROM Item WHERE Name = 'Keel services' STARTPOSITION 1 MAXRESULTS 1"
    assert queries[1] == "SELECT * FROM Account WHERE AccountType = 'Income' STARTPOSITION 1 MAXRESULTS 1"
    item = next(call for call in intuit.calls if call.request.url.startswith(f"{API}/item"))
    assert body(item) == {"Name": "Keel services", "Type": "Service", "IncomeAccountRef": {"value": "79"}}
    assert body(intuit.calls[-1])["Line"][0]["SalesItemLineDetail"]["ItemRef"] == {"value": "21"}
    connection.refresh_from_db()
    assert connection.default_item_id == "21"


def test_finalizing_an_invoice_pushes_its_customer_and_then_it(connection, billed, intuit,
                                                               django_capture_on_commit_callbacks):  # fmt: skip
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "0"}})
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    intuit.post(f"{API}/invoice", json={"Invoice": {"Id": "130", "SyncToken": "0"}})
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issue(billed)
    rows = {row.kind: row for row in QboSync.objects.all()}
    assert (rows[SyncKind.CUSTOMER].state, rows[SyncKind.CUSTOMER].qbo_id) == (SyncState.SUCCEEDED, "58")
    assert (rows[SyncKind.INVOICE].object_id, rows[SyncKind.INVOICE].qbo_id) == (str(invoice.pk), "130")


def test_nothing_is_queued_while_quickbooks_was_never_connected(billed, intuit, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        issue(billed)
    assert not QboSync.objects.exists() and not intuit.calls


def test_rows_wait_while_quickbooks_is_disconnected(connection, billed, intuit):
    row = customer_row(billed)
    intuit.post("https://developer.api.intuit.com/v2/oauth2/tokens/revoke")
    connection_disconnect(actor=None)
    assert sync_run(sync_id=row.pk) == "skipped"
    row.refresh_from_db()
    assert (row.state, row.attempts) == (SyncState.PENDING, 0)


# -- failures ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": fault("10000", "An application error has occurred", kind="SystemFault")},
        {"status": 429, "json": fault("003001", "ThrottleExceeded", kind="SERVICE")},
        {"body": requests.ConnectTimeout("connect timed out")},
    ],
    ids=["500", "429", "timeout"],
)
def test_an_outage_is_retried_on_the_backoff_then_given_up(connection, billed, intuit, clock, failure):
    known_customer(billed)
    invoice = issue(billed)
    intuit.get(f"{API}/query", **failure)
    row = invoice_row(invoice)
    for attempt, wait in enumerate(BACKOFF, start=1):
        assert sync_run(sync_id=row.pk) == SyncState.RETRYING
        row.refresh_from_db()
        assert (row.attempts, row.next_attempt_at) == (attempt, NOW + sum(BACKOFF[:attempt], timedelta()))
        assert row.last_error.startswith("QuickBooks")
        clock.shift(wait - timedelta(seconds=1))
        assert sync_run(sync_id=row.pk) == "skipped"  # not due yet
        clock.shift(timedelta(seconds=1))
    assert sync_run(sync_id=row.pk) == SyncState.FAILED
    row.refresh_from_db()
    assert (row.state, row.attempts) == (SyncState.FAILED, len(BACKOFF) + 1)
    assert sync_run(sync_id=row.pk) == "skipped"


def test_a_refusal_gives_up_at_once_with_quickbooks_words(connection, billed, intuit):
    known_customer(billed)
    invoice = issue(billed)
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    inactive = "Invalid Reference Id : Something you're trying to use has been made inactive."
    intuit.post(f"{API}/invoice", status=400, json=fault("2500", "Invalid Reference Id", inactive))
    row = invoice_row(invoice)
    assert sync_run(sync_id=row.pk) == SyncState.FAILED
    row.refresh_from_db()
    assert row.last_error.startswith("Invalid Reference Id: Invalid Reference Id")
    assert row.attempts == 1


def test_a_row_taken_by_another_worker_is_not_pushed_twice(connection, billed, intuit):
    row = customer_row(billed)
    QboSync.objects.filter(pk=row.pk).update(state=SyncState.RUNNING, claimed_at=NOW)
    assert sync_run(sync_id=row.pk) == "skipped"
    assert not intuit.calls


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [
        ("600", timedelta(minutes=10)),
        ("Mon, 02 Mar 2026 01:20:00 GMT", timedelta(minutes=20)),
        ("86400", BACKOFF[-1]),  # a day asked for: the last wait of the backoff at most
    ],
    ids=["seconds", "http-date", "capped"],
)
def test_a_wait_quickbooks_names_outlasts_the_backoff(connection, billed, intuit, clock, retry_after, wait):
    throttled = fault("003001", "ThrottleExceeded", kind="SERVICE")
    intuit.post(f"{API}/customer", status=429, json=throttled, headers={"Retry-After": retry_after})
    intuit.post(f"{API}/customer", json={"Customer": {"Id": "58", "SyncToken": "0"}})
    QboConnection.objects.filter(pk=connection.pk).update(access_expires_at=NOW + timedelta(days=1))  # no refresh
    row = customer_row(billed)
    assert sync_run(sync_id=row.pk) == SyncState.RETRYING
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (1, NOW + wait)
    connection.refresh_from_db()
    assert connection.paused_until == NOW + wait  # the company as a whole: no other row goes before then either
    clock.shift(wait - timedelta(seconds=1))
    assert sync_run(sync_id=row.pk) == "skipped"
    assert len(intuit.calls) == 1
    clock.shift(timedelta(seconds=1))
    assert sync_run(sync_id=row.pk) == SyncState.SUCCEEDED


def test_a_rate_limit_stops_the_run_and_the_rest_go_once_after_the_wait(connection, acme, globex, initech, intuit,
                                                                        clock):  # fmt: skip
    throttled = fault("003001", "ThrottleExceeded", kind="SERVICE")
    intuit.post(f"{API}/customer", status=429, json=throttled, headers={"Retry-After": "120"})
    for qbo_id in ("58", "59", "60"):
        intuit.post(f"{API}/customer", json={"Customer": {"Id": qbo_id, "SyncToken": "0"}})
    intuit.get(f"{API}/query", json={"QueryResponse": {}})
    rows = [customer_row(organization) for organization in (acme, globex, initech)]
    assert sync_due_run() == {"pushed": 0, "payments": 0}
    assert len(intuit.calls) == 1  # neither the other customers nor the payments were asked for
    first, *rest = (QboSync.objects.get(pk=row.pk) for row in rows)
    assert (first.state, first.attempts, first.next_attempt_at) == (SyncState.RETRYING, 1, NOW + timedelta(minutes=2))
    assert [(row.state, row.attempts, row.next_attempt_at) for row in rest] == [(SyncState.PENDING, 0, NOW)] * 2
    clock.shift(timedelta(minutes=2) - timedelta(seconds=1))
    assert sync_due_run() == {"pushed": 0, "payments": 0}
    assert sync_run(sync_id=rest[0].pk) == "skipped"
    assert len(intuit.calls) == 1
    clock.shift(timedelta(seconds=1))
    assert sync_due_run() == {"pushed": 3, "payments": 0}
    pushes = [call for call in intuit.calls if call.request.url.startswith(f"{API}/customer")]
    # The rows left waiting go first (they were due before the refused one's retry), each once.
    assert [body(call)["DisplayName"] for call in pushes] == ["Acme Pty Ltd", "Globex Corporation", "Initech",
                                                             "Acme Pty Ltd"]  # fmt: skip
    assert {row.state for row in QboSync.objects.all()} == {SyncState.SUCCEEDED}
    assert sync_due_run() == {"pushed": 0, "payments": 0}
    assert len(intuit.calls) == 6  # four pushes and two payment pulls: nothing more
