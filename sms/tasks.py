"""Messaging's background work: the dispatcher (beat, every few seconds), counter clean-up, sandbox callbacks."""

from __future__ import annotations

import fcntl
from datetime import timedelta
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from sms.models import SendCounter
from sms.services.dispatch import dispatch
from sms.services.reply_notices import replies_tell_more
from sms.services.settle import settle_sent

# A month's spending counter is needed for the whole month; every other window for a day at most.
KEEP_DAYS = 2
KEEP_MONTH_DAYS = 40


@shared_task
def dispatch_messages() -> int:
    """Beat: gate and send due campaign messages for up to ``SMS_DISPATCH_SECONDS``. On PostgreSQL several may run
    at once: each organization is worked by one at a time, and jobs are claimed with SKIP LOCKED. SQLite (``make
    run``) has no row locks, so there one run at a time holds a file lock and the others return at once."""
    if connection.vendor == "postgresql":
        return dispatch(seconds=settings.SMS_DISPATCH_SECONDS).sent
    with open(Path(settings.VAR_DIR) / "sms-dispatch.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0
        return dispatch(seconds=settings.SMS_DISPATCH_SECONDS).sent


@shared_task
def settle_sent_messages() -> int:
    """Beat: ask the provider about messages whose final status never arrived."""
    return settle_sent()


@shared_task
def tell_more_replies() -> int:
    """Beat: tell each organization how many more SMS replies came in each quarter of an hour just over."""
    return replies_tell_more()


@shared_task
def purge_counters() -> int:
    """Beat: forget rate, warm-up and spending windows that can no longer matter."""
    now = timezone.now()
    stale = Q(window__lt=now - timedelta(days=KEEP_DAYS)) & ~Q(key__endswith=":month")
    stale |= Q(window__lt=now - timedelta(days=KEEP_MONTH_DAYS))
    deleted, _ = SendCounter.objects.filter(stale).delete()
    return deleted


@shared_task
def post_sandbox_callbacks(sids: list[str]) -> int:
    """The sandbox provider's simulated status callbacks, signed and posted to the real webhook."""
    from sms.sandbox_callbacks import post_callbacks

    return post_callbacks(sids)
