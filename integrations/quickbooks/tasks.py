from __future__ import annotations

from celery import shared_task

from integrations.quickbooks import sync


@shared_task(acks_late=True)
def run_syncs(sync_ids: list[int]) -> list[str]:
    """Push the rows an event asked for, in order (a customer before its invoice)."""
    return [sync.sync_run(sync_id=sync_id) for sync_id in sync_ids]


@shared_task
def sync_due() -> dict[str, int]:
    """Beat, every five minutes: due pushes and retries, then the payments QuickBooks received."""
    return sync.sync_due_run()
