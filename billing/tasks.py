from celery import shared_task
from django.utils import timezone

from billing import services
from billing.services.contracts import contracts_renewal_notices
from billing.services.invoices import invoice_email
from billing.services.invoicing import invoices_generate


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
def send_invoice(invoice_id: str, organization_id: str) -> bool:
    """Email a finalized invoice with its PDF (after the finalizing transaction commits)."""
    return invoice_email(invoice_id=invoice_id, organization_id=organization_id)
