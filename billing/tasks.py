import logging

from celery import shared_task
from django.utils import timezone

from billing import services
from billing.services.cards import card_label_fill
from billing.services.collection import invoice_charge, rate_limited
from billing.services.contracts import contracts_renewal_notices
from billing.services.dunning import process_failed_payments as collection_run
from billing.services.invoices import invoice_email
from billing.services.invoicing import invoices_generate, invoices_unsent_send

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def process_stripe_event(event_pk: int) -> str:
    return services.stripe_event_process(event_pk=event_pk)


@shared_task
def retry_stripe_events() -> int:
    """Beat: process events still pending (never enqueued, or failed and due again)."""
    due = services.stripe_events_due()
    for event_pk in due:
        process_stripe_event.delay(event_pk)
    return len(due)


@shared_task
def generate_recurring_invoices() -> int:
    """Beat, daily: tell customers of contracts renewing within 30 days, then invoice every contract period due
    today (in each organization's time zone)."""
    contracts_renewal_notices(today=timezone.localdate())
    return invoices_generate().created


@shared_task(acks_late=True)
def send_invoices(jobs: list[tuple[str, str, bool]]) -> int:
    """Issued invoices, each (invoice id, organization id, whether to charge the saved card first): charge where due,
    then email each one (paid, or with its pay link when the card failed). One failure does not stop the others."""
    sent, limited = 0, False
    for invoice_id, organization_id, charge in jobs:
        try:
            # After the provider limits the rate, the rest keep their next_payment_at: the hourly run charges them.
            if charge and not limited:
                attempt = invoice_charge(invoice_id=invoice_id, organization_id=organization_id, scheduled=True)
                limited = rate_limited(attempt)
        except Exception:  # the invoice keeps its next_payment_at: the hourly run charges it
            logger.exception("charging invoice %s failed", invoice_id)
        try:
            # A job run again after a crash does not send twice what it sent before.
            sent += invoice_email(invoice_id=invoice_id, organization_id=organization_id, unsent_only=True)
        except Exception:  # sent_at stays empty; staff can send it again
            logger.exception("emailing invoice %s failed", invoice_id)
    return sent


@shared_task
def send_unsent_invoices() -> int:
    """Beat, hourly: email the issued invoices whose email job was lost (a worker died before queueing it, or the
    broker was down)."""
    return invoices_unsent_send()


@shared_task
def process_failed_payments() -> dict[str, object]:
    """Beat, hourly: automatic charges and retries due, overdue reminders, late fees and suspensions."""
    report = collection_run()
    return {"charged": report.charged, "paid": report.paid, "failed": report.failed, "reminded": report.reminded,
            "late_fees": report.late_fees, "suspended": report.suspended, "held_back": report.held_back}  # fmt: skip


@shared_task
def label_card(organization_id: str, payment_method: str) -> str:
    """The label of a card just saved at checkout (``billing.services.cards.card_label_fill``)."""
    return card_label_fill(organization_id=organization_id, payment_method=payment_method)
