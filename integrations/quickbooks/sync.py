"""Keeping QuickBooks in step: running the rows that push Keel's side of the books, and recording the payments
QuickBooks received.

Each object has one ``QboSync`` row. A run claims it with a conditional UPDATE (due and not taken, or taken by a
worker that vanished), so two workers never push the same row at once; then pushes, and stores QuickBooks' id. A
failure QuickBooks may get over (timeout, 429, 5xx) is retried after ``BACKOFF``, or after the wait QuickBooks named in
``Retry-After`` when that is longer (at most the last ``BACKOFF`` wait); after the last wait the row gives up (FAILED)
and the admin shows why, as it does at once for a refusal that retrying cannot change (a validation fault).

QuickBooks limits calls per company. When it asks Keel to slow down (a 429, or a wait named in ``Retry-After``), the
connection is paused until then (``QboConnection.paused_until``): the run stops there, and nothing is pushed or pulled
before that time. The rows not tried stay due, with no attempt spent, and go at the first run after the pause.

What a row pushes, and how pushing twice never makes two records in QuickBooks, is ``integrations.quickbooks.pushes``:
customers, invoices (voided there when voided in Keel), the payments Keel received and the refunds it made. A row that
needs a setting staff have not chosen (the account refunds are paid from) waits for it with no attempt spent.
``integrations.quickbooks.rows`` makes the rows.

A payment row records a QuickBooks payment in Keel, once per invoice it pays (``billing.services.external_payments``
is idempotent on the payment's reference), so pulling the same payment again changes nothing. The pull leaves alone
the payments Keel pushed itself (``PaymentRefNum`` ``KEEL-...``), as Keel has them; a payment QuickBooks itself
received is never pushed back.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from billing.models import Invoice
from billing.services.external_payments import invoice_record_external_payment
from integrations.quickbooks import mapping
from integrations.quickbooks.connection import Books, books_for, connection_usable
from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.providers.base import Entity, QboError, ReconnectNeededError, SettingNeededError
from integrations.quickbooks.pushes import PUSHERS
from msp.retry_after import wait_before_retry
from tenancy.errors import ConflictError, ServiceValidationError

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
SETTING_WAIT = timedelta(hours=1)  # a row waiting for a setting is tried again then, or at once when it is chosen
SOURCE = "quickbooks"
# An invoice needs its customer first, a receipt its invoice, and a refund its receipt.
KIND_ORDER = (SyncKind.CUSTOMER, SyncKind.INVOICE, SyncKind.RECEIPT, SyncKind.REFUND, SyncKind.PAYMENT)


def payment_reference(qbo_payment_id: str) -> str:
    return f"QBO payment {qbo_payment_id}"


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
    except SettingNeededError as error:
        # Nor this one: it waits for staff, with no attempt spent (``rows.refunds_waiting`` makes it due at once).
        QboSync.objects.filter(pk=sync.pk).update(
            state=SyncState.PENDING, attempts=F("attempts") - 1, last_error=error.message, claimed_at=None,
            next_attempt_at=now + SETTING_WAIT,
        )  # fmt: skip
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
