from __future__ import annotations

from celery import shared_task

from quotes import services


@shared_task
def expire_quotes() -> int:
    """Beat: expire open quotes past their expiry date. Safe to run concurrently or twice."""
    return services.quotes_expire()
