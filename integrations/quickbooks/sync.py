"""Keeping QuickBooks in step: pushing customers and invoices, and recording the payments QuickBooks received.

Each object has one ``QboSync`` row. A run claims it with a conditional UPDATE (due and not taken, or taken by a
worker that vanished), so two workers never push the same row at once; then pushes, and stores QuickBooks' id. A
failure QuickBooks may get over (timeout, 429, 5xx) is retried after ``BACKOFF``, or after the wait QuickBooks named in
``Retry-After`` when that is longer (at most the last ``BACKOFF`` wait); after the last wait the row gives up (FAILED)
and the admin shows why, as it does at once for a refusal that retrying cannot change (a validation fault).

QuickBooks limits calls per company. When it asks Keel to slow down (a 429, or a wait named in ``Retry-After``), the
connection is paused until then (``QboConnection.paused_until``): the run stops there, and nothing is pushed or pulled
before that time. The rows not tried stay due, with no attempt spent, and go at the first run after the pause.

Pushing twice never makes two records in QuickBooks: a pushed object carries its QuickBooks id and is updated with the
entity's current ``SyncToken``. Before creating, Keel looks for what an earlier try may have created without Keel
hearing back: a customer by its unique ``DisplayName`` (adopted when QuickBooks answers "Duplicate Name Exists"), an
invoice by its ``DocNumber`` for that customer.

A payment row records a QuickBooks payment in Keel, once per invoice it pays (``billing.services.external_payments``
is idempotent on the payment's reference), so pulling the same payment again changes nothing.

The other way, a receipt row pushes a payment Keel received (a card charge, a transfer staff recorded) as a
QuickBooks payment applied to the invoice, so the invoice is paid in the books too. It waits for its invoice to be in
QuickBooks. Before creating, Keel looks for the payment by its ``PaymentRefNum`` (``KEEL-<invoice>-<attempt>``) among
the customer's payments of that day; the pull of QuickBooks' payments leaves such payments alone, as Keel has them. A
payment QuickBooks itself received is never pushed back. A voided invoice is voided in QuickBooks (its next push);
one QuickBooks never had is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.models import AttemptStatus, Invoice, InvoiceLine, InvoiceStatus, PaymentAttempt
from billing.selectors import billing_contacts
from billing.services.external_payments import invoice_record_external_payment
from integrations.quickbooks import mapping
from integrations.quickbooks.connection import Books, books_for, connection_usable
from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.providers.base import DUPLICATE_NAME, Entity, QboError, ReconnectNeededError
from msp.retry_after import wait_before_retry
from tenancy.errors import ConflictError, ServiceValidationError
from tenancy.models import Organization

logger = logging.getLogger(__name__)

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)
CLAIM_TIMEOUT = timedelta(minutes=15)
BATCH = 200
SERVICE_ITEM = "Keel services"
SOURCE = "quickbooks"
# An invoice needs its customer first, and a receipt its invoice.
KIND_ORDER = (SyncKind.CUSTOMER, SyncKind.INVOICE, SyncKind.RECEIPT, SyncKind.PAYMENT)


def payment_reference(qbo_payment_id: str) -> str:
    return f"QBO payment {qbo_payment_id}"


# -- asking for a push -------------------------------------------------------------------------------------------------


def sync_enqueue(*, kind: str, organization_id: Any, object_id: Any, again: bool = False,
                 now: datetime | None = None) -> QboSync:  # fmt: skip
    """The object's row, created due now when new. ``again``: push it once more even if it was pushed or gave up
    (a fresh run of attempts); a row being pushed right now is left to finish."""
    now = now or timezone.now()
    row, created = QboSync.objects.get_or_create(
        kind=kind, object_id=str(object_id), defaults={"organization_id": organization_id, "next_attempt_at": now}
    )
    if again and not created:
        syncs_again(sync_ids=[row.pk], now=now)
        row.refresh_from_db()
    return row


def invoice_push_enqueue(*, organization_id: Any, invoice_id: Any) -> list[int]:
    """Rows for a finalized invoice, and for its organization's customer when it has none in QuickBooks yet; their
    ids in the order to push them."""
    ids = []
    customer_id = Organization.objects.filter(pk=organization_id).values_list("qbo_customer_id", flat=True).first()
    if customer_id is None:
        return []
    if not customer_id:
        ids.append(sync_enqueue(kind=SyncKind.CUSTOMER, organization_id=organization_id, object_id=organization_id).pk)
    ids.append(sync_enqueue(kind=SyncKind.INVOICE, organization_id=organization_id, object_id=invoice_id).pk)
    return ids


def run_after_commit(sync_ids: list[int]) -> None:
    """Push the rows once the caller's transaction commits (the beat picks them up should the broker be down)."""
    if not sync_ids:
        return

    def enqueue() -> None:
        from integrations.quickbooks.tasks import run_syncs

        try:
            run_syncs.delay(sync_ids)
        except Exception:
            logger.warning("could not queue QuickBooks sync of %s; the beat will run it", sync_ids, exc_info=True)

    transaction.on_commit(enqueue)


def syncs_again(
    *, sync_ids: Iterable[int], states: Iterable[str] | None = None, now: datetime | None = None
) -> list[int]:
    """Make rows due now with a fresh run of attempts (staff's "Retry now" on rows in ``states``, "Push again" on
    any); rows being pushed are left alone. Returns the ids reset."""
    now = now or timezone.now()
    rows = QboSync.objects.filter(pk__in=list(sync_ids)).exclude(state=SyncState.RUNNING)
    if states is not None:
        rows = rows.filter(state__in=list(states))
    ids = list(rows.values_list("pk", flat=True))
    QboSync.objects.filter(pk__in=ids).update(state=SyncState.PENDING, attempts=0, next_attempt_at=now, claimed_at=None)
    return ids


# -- running a row -----------------------------------------------------------------------------------------------------


def _claim(sync_id: int, now: datetime) -> bool:
    due = Q(state__in=[SyncState.PENDING, SyncState.RETRYING], next_attempt_at__lte=now)
    abandoned = Q(state=SyncState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT)
    claimed = QboSync.objects.filter(due | abandoned, pk=sync_id).update(
        state=SyncState.RUNNING, claimed_at=now, attempts=F("attempts") + 1
    )
    return claimed == 1


def backoff(attempts: int) -> timedelta | None:
    """The wait after the ``attempts``-th failed try, or None once the last try failed."""
    return BACKOFF[attempts - 1] if 1 <= attempts <= len(BACKOFF) else None


def _failed(sync: QboSync, error: QboError, now: datetime) -> str:
    own = backoff(sync.attempts) if error.retryable else None
    wait = wait_before_retry(own, error.retry_after, longest=BACKOFF[-1]) if own is not None else None
    state = SyncState.RETRYING if wait is not None else SyncState.FAILED
    QboSync.objects.filter(pk=sync.pk).update(
        state=state, last_error=error.message[:2000], next_attempt_at=now + wait if wait else now, claimed_at=None
    )
    logger.warning("QuickBooks %s sync %s: %s (%s)", sync.kind, sync.pk, error.message, state)
    return state


def paused(connection: QboConnection, now: datetime) -> bool:
    """Whether QuickBooks asked Keel to wait and the time it named has not come."""
    return connection.paused_until is not None and connection.paused_until > now


def _paused_now(connection_id: int, now: datetime) -> bool:
    return QboConnection.objects.filter(pk=connection_id, paused_until__gt=now).exists()


def _slow_down(connection_id: int, error: QboError, now: datetime) -> None:
    """Pause the connection when QuickBooks asked Keel to hold off: for the wait it named, else for the first
    ``BACKOFF`` wait (never beyond the last one)."""
    if not error.slow_down:
        return
    until = now + wait_before_retry(BACKOFF[0], error.retry_after, longest=BACKOFF[-1])
    QboConnection.objects.filter(Q(paused_until__isnull=True) | Q(paused_until__lt=until), pk=connection_id).update(
        paused_until=until
    )
    logger.warning("QuickBooks asked Keel to slow down: nothing is sent to it before %s", until.isoformat())


def sync_run(*, sync_id: int, now: datetime | None = None, payment: Entity | None = None) -> str:
    """Push (or record) one row if it is due and unclaimed, while QuickBooks is connected and not paused. Returns the
    state it ends in, ``waiting`` when QuickBooks needs reconnecting, or ``skipped``. ``payment``: the QuickBooks
    payment a pull just read, so it is not read again."""
    now = now or timezone.now()
    connection = connection_usable()
    if connection is None or paused(connection, now) or not _claim(sync_id, now):
        return "skipped"
    sync = QboSync.objects.select_related("organization").get(pk=sync_id)
    books = books_for(connection)
    try:
        if sync.kind == SyncKind.PAYMENT:
            qbo_id = _record_payment(books, sync, payment)
        else:
            qbo_id = PUSHERS[sync.kind](books, sync)
    except ReconnectNeededError as error:
        # Not this row's fault: the try is handed back, and the row waits for staff to reconnect.
        QboSync.objects.filter(pk=sync.pk).update(
            state=SyncState.PENDING, attempts=F("attempts") - 1, last_error=error.message, claimed_at=None
        )
        return "waiting"
    except QboError as error:
        _slow_down(connection.pk, error, now)
        return _failed(sync, error, now)
    except Exception as error:  # a surprise is retried like an outage, and shown in the admin
        logger.exception("QuickBooks %s sync %s failed", sync.kind, sync.pk)
        return _failed(sync, QboError(f"Keel could not push this: {type(error).__name__}: {error}", retryable=True),
                       now)  # fmt: skip
    QboSync.objects.filter(pk=sync.pk).update(
        state=SyncState.SUCCEEDED, qbo_id=qbo_id, synced_at=now, last_error="", claimed_at=None
    )
    return SyncState.SUCCEEDED


def syncs_due(*, now: datetime | None = None, limit: int = BATCH) -> list[int]:
    """Rows due now, customers first, then invoices, then payments, oldest first within each."""
    now = now or timezone.now()
    due = Q(state__in=[SyncState.PENDING, SyncState.RETRYING], next_attempt_at__lte=now) | Q(
        state=SyncState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT
    )
    rows = QboSync.objects.filter(due).order_by("next_attempt_at", "pk").values_list("pk", "kind")[:limit]
    return [pk for pk, _ in sorted(rows, key=lambda row: KIND_ORDER.index(SyncKind(row[1])))]


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


def receipt_push_enqueue(*, organization_id: Any, attempt_id: Any, invoice_id: Any) -> list[int]:
    """Rows to push a payment Keel received: its invoice's (and customer's) when QuickBooks does not have them yet,
    and the payment's."""
    rows = invoice_push_enqueue(organization_id=organization_id, invoice_id=invoice_id)
    receipt = sync_enqueue(kind=SyncKind.RECEIPT, organization_id=organization_id, object_id=attempt_id)
    return [*rows, receipt.pk]


PUSHERS: dict[str, Callable[[Books, QboSync], str]] = {
    SyncKind.CUSTOMER: _push_customer,
    SyncKind.INVOICE: _push_invoice,
    SyncKind.RECEIPT: _push_receipt,
}


# -- payments ----------------------------------------------------------------------------------------------------------


def _received_on(payment: Entity) -> date:
    try:
        return date.fromisoformat(str(payment.get("TxnDate") or ""))
    except ValueError:
        return timezone.localdate()


def _record_payment(books: Books, sync: QboSync, payment: Entity | None) -> str:
    """Record in Keel what the QuickBooks payment paid of each invoice Keel pushed."""
    payment = payment or books.provider.read(books.auth, "payment", sync.qbo_id)
    parts = list(mapping.payment_parts(payment))
    pushed = {
        qbo_id: (organization_id, invoice_id)
        for qbo_id, organization_id, invoice_id in QboSync.objects.filter(
            kind=SyncKind.INVOICE, qbo_id__in=[part.invoice_id for part in parts]
        ).values_list("qbo_id", "organization_id", "object_id")
    }
    currency = str((payment.get("CurrencyRef") or {}).get("value") or "")
    for part in parts:
        if part.invoice_id not in pushed:
            continue  # an invoice made in QuickBooks, not Keel's
        organization_id, invoice_id = pushed[part.invoice_id]
        invoice = Invoice.objects.for_org(organization_id).filter(pk=invoice_id).first()
        if invoice is None:
            raise QboError(f"Keel's invoice for QuickBooks invoice {part.invoice_id} no longer exists.")
        if currency and currency != invoice.currency:
            raise QboError(f"The payment is in {currency} but {invoice.reference} is in {invoice.currency}.")
        try:
            invoice_record_external_payment(invoice=invoice, amount=part.amount, source=SOURCE,
                                            reference=payment_reference(sync.qbo_id),
                                            received_on=_received_on(payment))  # fmt: skip
        except (ConflictError, ServiceValidationError) as refused:
            raise QboError(f"{invoice.reference}: {refused}") from refused
    return sync.qbo_id


def _changed_at(payment: Entity) -> datetime | None:
    try:
        changed = datetime.fromisoformat(str((payment.get("MetaData") or {}).get("LastUpdatedTime") or ""))
    except ValueError:
        return None
    return changed if changed.tzinfo is not None else None


def payment_key(realm_id: str, qbo_payment_id: str) -> str:
    """A payment row's ``object_id``: QuickBooks numbers payments per company."""
    return f"{realm_id}:{qbo_payment_id}"


def _payment_take(payment: Entity, realm_id: str, now: datetime) -> int | None:
    """The payment's row, new and due, when it pays an invoice Keel pushed and has no row yet."""
    qbo_id = str(payment.get("Id") or "")
    if mapping.pushed_by_keel(payment):  # a payment Keel received and pushed: Keel has it already
        return None
    invoice_ids = [part.invoice_id for part in mapping.payment_parts(payment)]
    owner = (
        QboSync.objects.filter(kind=SyncKind.INVOICE, qbo_id__in=invoice_ids)
        .values_list("organization_id", flat=True)
        .first()
    )
    if not qbo_id or owner is None:
        return None
    row, created = QboSync.objects.get_or_create(
        kind=SyncKind.PAYMENT, object_id=payment_key(realm_id, qbo_id),
        defaults={"organization_id": owner, "qbo_id": qbo_id, "next_attempt_at": now},
    )  # fmt: skip
    return row.pk if created else None


def payments_pull(*, now: datetime | None = None, page_size: int = 100) -> int:
    """Record the payments QuickBooks received since the last pull that pay invoices Keel pushed; returns how many
    new payments were taken. The cursor moves only after every page was read, and an instant already read is read
    again next time (a payment already taken is skipped), so nothing changed in the same second is missed."""
    now = now or timezone.now()
    connection = connection_usable()
    if connection is None or paused(connection, now):
        return 0
    books = books_for(connection)
    since = connection.payments_pulled_through or connection.connected_at
    newest, taken, start = since, 0, 1
    while True:
        page = books.provider.query(books.auth, "Payment", {}, updated_since=since, start=start, limit=page_size)
        for payment in page:
            changed = _changed_at(payment)
            if changed is not None:
                newest = max(newest, changed)
            sync_id = _payment_take(payment, connection.realm_id, now)
            if sync_id is not None:
                taken += 1
                sync_run(sync_id=sync_id, now=now, payment=payment)
        if len(page) < page_size:
            break
        start += page_size
    QboConnection.objects.filter(pk=connection.pk).update(payments_pulled_through=newest)
    return taken


def sync_due_run(*, now: datetime | None = None) -> dict[str, int]:
    """The beat's work: every due row, then the payments QuickBooks received. Nothing while QuickBooks is not
    connected, or paused (rows wait); a run that QuickBooks asks to slow down stops there."""
    now = now or timezone.now()
    connection = connection_usable()
    if connection is None or paused(connection, now):
        return {"pushed": 0, "payments": 0}
    outcomes = []
    for sync_id in syncs_due(now=now):
        outcome = sync_run(sync_id=sync_id, now=now)
        outcomes.append(outcome)
        if outcome in (SyncState.RETRYING, SyncState.FAILED) and _paused_now(connection.pk, now):
            # The rows after it stay due, with no attempt spent, and the payments unread, until the pause ends.
            return {"pushed": outcomes.count(SyncState.SUCCEEDED), "payments": 0}
    try:
        taken = payments_pull(now=now)
    except QboError as error:
        taken = 0
        _slow_down(connection.pk, error, now)
        if not isinstance(error, ReconnectNeededError):  # that one is on the connection already
            QboConnection.objects.filter(pk=connection.pk).update(
                last_error=f"Pulling payments: {error.message}"[:500], last_error_at=now
            )
    else:
        QboConnection.objects.filter(pk=connection.pk, status=ConnectionStatus.CONNECTED).exclude(last_error="").update(
            last_error="", last_error_at=None
        )
    return {"pushed": outcomes.count(SyncState.SUCCEEDED), "payments": taken}
