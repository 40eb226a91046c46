"""Pushing Keel's side of the books to QuickBooks, one row at a time (``integrations.quickbooks.sync`` claims the row
and records how it went): the organization as a customer, an invoice (voided there when Keel voided it), a payment
Keel received applied to its invoice, and a refund Keel made of such a payment. Each pusher returns QuickBooks' id.

Pushing twice never makes two records in QuickBooks: a pushed object carries its QuickBooks id and is updated with
the entity's current ``SyncToken``. Before creating, Keel looks for what an earlier try may have created without Keel
hearing back: a customer by its unique ``DisplayName`` (adopted when QuickBooks answers "Duplicate Name Exists"), an
invoice by its ``DocNumber`` for that customer, a payment by its ``PaymentRefNum`` among the customer's payments of
that day, and a refund by its ``DocNumber`` for that customer. A payment waits for its invoice to be in QuickBooks;
an invoice voided before QuickBooks had it is left out.

A refund becomes a QuickBooks refund receipt paid from the bank account staff chose on the connection, booked to the
items the invoice was booked to: the invoice's share of tax on the tax item, the rest on the service item, so it
takes back from income and tax exactly what the payment brought in. It waits for its payment to be in QuickBooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from billing.models import AttemptStatus, Invoice, InvoiceLine, InvoiceStatus, PaymentAttempt
from billing.selectors import billing_contacts
from integrations.quickbooks import mapping
from integrations.quickbooks.connection import Books
from integrations.quickbooks.models import QboConnection, QboSync, SyncKind
from integrations.quickbooks.providers.base import DUPLICATE_NAME, Entity, QboError, SettingNeededError
from tenancy.models import Organization

SERVICE_ITEM = "Keel services"


# -- customers ---------------------------------------------------------------------------------------------------------


def _customer_body(organization: Organization) -> Entity:
    contacts = billing_contacts(organization)
    return mapping.customer_body(name=organization.name, email=contacts[0] if contacts else "",
                                 currency=organization.currency)  # fmt: skip


def customer_ensure(books: Books, organization: Organization, *, update: bool) -> str:
    """The organization's QuickBooks customer id: created (or adopted, when its name is already a customer) when it
    has none; brought up to date with its name and billing email when ``update``."""
    body = _customer_body(organization)
    if organization.qbo_customer_id:
        if update:
            current = books.provider.read(books.auth, "customer", organization.qbo_customer_id)
            changed = mapping.customer_update(body, qbo_id=organization.qbo_customer_id,
                                              sync_token=str(current.get("SyncToken", "0")))  # fmt: skip
            books.provider.save(books.auth, "customer", changed)
        return organization.qbo_customer_id
    try:
        qbo_id = str(books.provider.save(books.auth, "customer", body)["Id"])
    except QboError as error:
        if error.code != DUPLICATE_NAME:
            raise
        found = books.provider.query(books.auth, "Customer", {"DisplayName": body["DisplayName"]}, limit=1)
        if not found:
            raise QboError(f'"{body["DisplayName"]}" is the name of a vendor, an employee or an inactive customer in '
                           "QuickBooks; rename one of them and retry.", code=DUPLICATE_NAME) from error  # fmt: skip
        qbo_id = str(found[0]["Id"])
    Organization.objects.filter(pk=organization.pk).update(qbo_customer_id=qbo_id)
    organization.qbo_customer_id = qbo_id
    return qbo_id


def _push_customer(books: Books, sync: QboSync) -> str:
    return customer_ensure(books, sync.organization, update=True)


# -- invoices ----------------------------------------------------------------------------------------------------------


def _service_item(books: Books, configured: str) -> str:
    """The item invoice lines are booked to: the one staff configured, else "Keel services" (created, on the first
    income account, when QuickBooks has none by that name)."""
    if configured:
        return configured
    found = books.provider.query(books.auth, "Item", {"Name": SERVICE_ITEM}, limit=1)
    if found:
        item_id = str(found[0]["Id"])
    else:
        accounts = books.provider.query(books.auth, "Account", {"AccountType": "Income"}, limit=1)
        if not accounts:
            raise QboError("QuickBooks has no income account to book Keel's invoices to; choose a default item on "
                           "the QuickBooks connection.")  # fmt: skip
        item = {"Name": SERVICE_ITEM, "Type": "Service", "IncomeAccountRef": {"value": str(accounts[0]["Id"])}}
        item_id = str(books.provider.save(books.auth, "item", item)["Id"])
    QboConnection.objects.filter(pk=books.connection.pk, default_item_id="").update(default_item_id=item_id)
    return item_id


def invoice_doc(invoice: Invoice, lines: Iterable[InvoiceLine]) -> mapping.InvoiceDoc:
    return mapping.InvoiceDoc(
        keel_id=str(invoice.pk), number=invoice.reference, issue_date=invoice.issue_date, due_date=invoice.due_date,
        currency=invoice.currency, tax=invoice.tax, tax_label=invoice.tax_label, tax_rate=invoice.tax_rate,
        memo=invoice.memo,
        lines=[mapping.LineDoc(line.description, line.quantity, line.unit_price, line.amount) for line in lines],
    )  # fmt: skip


def _push_invoice(books: Books, sync: QboSync) -> str:
    invoice = (
        Invoice.objects.for_org(sync.organization_id).select_related("organization").filter(pk=sync.object_id).first()
    )
    if invoice is None:
        raise QboError("The invoice no longer exists in Keel.")
    if invoice.number is None:
        raise QboError("A draft invoice is not pushed; it is pushed once it is finalized.")
    if invoice.status == InvoiceStatus.VOID:
        return _void_invoice(books, sync, invoice)
    customer_id = customer_ensure(books, invoice.organization, update=False)
    # Read now rather than from the connection in hand: staff may have chosen items since the run began.
    items = QboConnection.objects.filter(pk=books.connection.pk).values("default_item_id", "tax_item_id").get()
    item_id = _service_item(books, items["default_item_id"])
    lines = InvoiceLine.objects.for_org(sync.organization_id).filter(invoice=invoice).order_by("position", "id")
    body = mapping.invoice_body(invoice_doc(invoice, lines), customer_id=customer_id, item_id=item_id,
                                tax_item_id=items["tax_item_id"])  # fmt: skip
    qbo_id = sync.qbo_id
    if not qbo_id:
        found = books.provider.query(books.auth, "Invoice", {"DocNumber": body["DocNumber"],
                                                             "CustomerRef": customer_id}, limit=1)  # fmt: skip
        qbo_id = str(found[0]["Id"]) if found else ""
    if not qbo_id:
        return str(books.provider.save(books.auth, "invoice", body)["Id"])
    # Remember the id before updating, so a failed update is retried as an update.
    QboSync.objects.filter(pk=sync.pk).update(qbo_id=qbo_id)
    current = books.provider.read(books.auth, "invoice", qbo_id)
    books.provider.save(books.auth, "invoice", {**body, "Id": qbo_id, "SyncToken": str(current.get("SyncToken", "0"))})
    return qbo_id


def _void_invoice(books: Books, sync: QboSync, invoice: Invoice) -> str:
    """Void the invoice's QuickBooks copy (found by its id, or by its number for its customer); nothing when
    QuickBooks never had it, or has it voided already."""
    qbo_id = sync.qbo_id
    customer_id = invoice.organization.qbo_customer_id
    if not qbo_id and customer_id:
        number = invoice_doc(invoice, []).number[: mapping.DOC_NUMBER_LIMIT]
        found = books.provider.query(books.auth, "Invoice", {"DocNumber": number, "CustomerRef": customer_id},
                                     limit=1)  # fmt: skip
        qbo_id = str(found[0]["Id"]) if found else ""
    if not qbo_id:
        return ""
    current = books.provider.read(books.auth, "invoice", qbo_id)
    if mapping.voided(current):
        return qbo_id
    books.provider.void(books.auth, "invoice", qbo_id, str(current.get("SyncToken", "0")))
    return qbo_id


def receipt_doc(attempt: PaymentAttempt, invoice: Invoice) -> mapping.ReceiptDoc:
    received = timezone.localtime(attempt.completed_at or attempt.created_at, ZoneInfo(invoice.organization.timezone))
    how = (
        f"Card payment collected by Keel ({attempt.payment_intent_id})"
        if attempt.payment_intent_id
        else "Payment recorded in Keel"
    )
    return mapping.ReceiptDoc(
        reference=mapping.receipt_reference(invoice.number or 0, attempt.number),
        received_on=received.date(),
        amount=attempt.amount,
        currency=attempt.currency,
        note=f"{how} for {invoice.reference}, attempt {attempt.number}.",
    )


def _push_receipt(books: Books, sync: QboSync) -> str:
    """Apply a payment Keel received to its invoice in QuickBooks; adopt the one an earlier try made."""
    if sync.qbo_id:
        return sync.qbo_id
    attempt = (
        PaymentAttempt.objects.for_org(sync.organization_id)
        .select_related("invoice__organization")
        .filter(pk=sync.object_id)
        .first()
    )
    if attempt is None:
        raise QboError("The payment no longer exists in Keel.")
    if attempt.status != AttemptStatus.SUCCEEDED:
        raise QboError(f"The payment is {attempt.get_status_display().lower()}, not succeeded: it is not recorded.")
    invoice = attempt.invoice
    invoice_qbo_id = (
        QboSync.objects.filter(kind=SyncKind.INVOICE, object_id=str(invoice.pk))
        .exclude(qbo_id="")
        .values_list("qbo_id", flat=True)
        .first()
    )
    if not invoice_qbo_id:
        raise QboError(f"{invoice.reference} is not in QuickBooks yet; its payment waits for it.", retryable=True)
    customer_id = customer_ensure(books, invoice.organization, update=False)
    body = mapping.receipt_body(receipt_doc(attempt, invoice), customer_id=customer_id, invoice_id=invoice_qbo_id)
    same_day = books.provider.query(books.auth, "Payment", {"CustomerRef": customer_id, "TxnDate": body["TxnDate"]},
                                    limit=1000)  # fmt: skip
    for payment in same_day:
        if str(payment.get("PaymentRefNum") or "") == body["PaymentRefNum"]:
            return str(payment["Id"])
    return str(books.provider.save(books.auth, "payment", body)["Id"])


# -- refunds -----------------------------------------------------------------------------------------------------------


def _pushed_as(kind: str, object_id: object) -> str:
    """QuickBooks' id of an object Keel pushed, or "" while it is not there."""
    found = QboSync.objects.filter(kind=kind, object_id=str(object_id)).exclude(qbo_id="")
    return found.values_list("qbo_id", flat=True).first() or ""


def refund_doc(sync: QboSync, attempt: PaymentAttempt, invoice: Invoice) -> mapping.RefundDoc:
    """The refund a row records (its ``object_id`` is ``rows.refund_object_id``)."""
    amount = Decimal(int(sync.object_id.split(":")[2])) / 100
    # The invoice's share of tax in what went back, so the refund takes back tax and income as the invoice booked them.
    tax = mapping.cents(amount * invoice.tax / invoice.total) if invoice.total else Decimal(0)
    refunded = timezone.localtime(sync.created_at, ZoneInfo(invoice.organization.timezone))  # its row is made then
    return mapping.RefundDoc(
        reference=mapping.refund_reference(sync.pk),
        refunded_on=refunded.date(),
        amount=amount,
        tax=tax,
        tax_label=invoice.tax_label,
        tax_rate=invoice.tax_rate,
        currency=attempt.currency,
        note=f"Refund made in Keel ({attempt.payment_intent_id or 'payment'}) of {invoice.reference}, attempt "
        f"{attempt.number}: {amount:.2f} of {attempt.amount:.2f}.",
    )


def _push_refund(books: Books, sync: QboSync) -> str:
    """A refund of a payment Keel received, as a QuickBooks refund receipt; adopt the one an earlier try made."""
    if sync.qbo_id:
        return sync.qbo_id
    attempt_id = sync.object_id.partition(":")[0]
    attempt = (
        PaymentAttempt.objects.for_org(sync.organization_id)
        .select_related("invoice__organization")
        .filter(pk=attempt_id)
        .first()
    )
    if attempt is None:
        raise QboError("The refunded payment no longer exists in Keel.")
    invoice = attempt.invoice
    if not _pushed_as(SyncKind.RECEIPT, attempt.pk):
        raise QboError(f"The payment of {invoice.reference} is not in QuickBooks yet; its refund waits for it.",
                       retryable=True)  # fmt: skip
    settings = (
        QboConnection.objects.filter(pk=books.connection.pk)
        .values("default_item_id", "tax_item_id", "refund_account_id")
        .get()
    )
    if not settings["refund_account_id"]:
        raise SettingNeededError("Choose the QuickBooks account refunds are paid from (the connection's refund "
                                 "account); the refund is pushed once it is chosen.")  # fmt: skip
    doc = refund_doc(sync, attempt, invoice)
    customer_id = customer_ensure(books, invoice.organization, update=False)
    item_id = _service_item(books, settings["default_item_id"])
    body = mapping.refund_body(doc, customer_id=customer_id, item_id=item_id, tax_item_id=settings["tax_item_id"],
                               account_id=settings["refund_account_id"])  # fmt: skip
    found = books.provider.query(books.auth, "RefundReceipt", {"DocNumber": body["DocNumber"],
                                                               "CustomerRef": customer_id}, limit=1)  # fmt: skip
    if found:
        return str(found[0]["Id"])
    return str(books.provider.save(books.auth, "refundreceipt", body)["Id"])


PUSHERS: dict[str, Callable[[Books, QboSync], str]] = {
    SyncKind.CUSTOMER: _push_customer,
    SyncKind.INVOICE: _push_invoice,
    SyncKind.RECEIPT: _push_receipt,
    SyncKind.REFUND: _push_refund,
}
