"""Notifications' background work: one task per delivery, the beat that retries due ones, and bulk sends."""

from __future__ import annotations

from celery import shared_task

from notifications.services import bulk, delivery


@shared_task(acks_late=True)
def send_delivery(delivery_id: str) -> str:
    """Send one delivery (claimed first, so a duplicate task does nothing)."""
    return delivery.delivery_send(delivery_id=delivery_id)


@shared_task
def retry_due() -> int:
    """Beat: queue the deliveries that are due (retries after their wait, and any whose task was lost), and restart
    bulk sends whose job stalled."""
    due = delivery.deliveries_due()
    for delivery_id in due:
        send_delivery.delay(delivery_id)
    stalled = delivery.bulk_sends_stalled()
    for bulk_send_id in stalled:
        run_bulk_send.delay(bulk_send_id)
    return len(due) + len(stalled)


@shared_task(acks_late=True)
def run_bulk_send(bulk_send_id: str) -> int:
    """Tell everyone a bulk send is addressed to; how many were told (0 when another job holds it)."""
    done = bulk.bulk_send_run(bulk_send_id=bulk_send_id)
    return done.sent if done is not None else 0
