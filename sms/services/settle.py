"""Settling what the dispatcher leaves behind: jobs left SENDING past their lease, and finished campaigns.

A job is SENDING from the moment it is claimed until the provider's answer is recorded. If that answer never gets
recorded (the worker died, or the provider's answer was lost in a timeout), the lease runs out and
:func:`reconcile` asks the provider whether it has the message: SENT with the provider's sid when it does, QUEUED
again (to be sent once) when it does not. A job the provider could not be asked about is asked about again after
``RETRY_AFTER``, or after the wait the provider named (``Retry-After``) when that is longer, at most ``RETRY_MOST``;
when the provider refused for a while (a rate limit), the jobs not asked about yet wait as long, and the run asks
the provider nothing more.

Such a wait is also kept in the cache (:func:`provider_pause`): until it passes, no dispatch or settle run, in any
worker, asks the provider anything, so another organization's messages do not spend a refused request on it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from events.services import publish
from msp import pauses
from msp.retry_after import wait_before_retry
from sms.models import Campaign, CampaignStatus, JobState, SendJob, ShortLink
from sms.providers import get_provider
from sms.providers.base import MessageProvider, ProviderError
from tenancy.recordset import update_rows

logger = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=2)  # a send that failed in a retryable way is reconciled after this
RETRY_MOST = timedelta(hours=1)  # the longest wait after a retryable error, whatever the provider asks for
RECONCILE_LIMIT = 200
SETTLE_AFTER = timedelta(minutes=10)  # a message still SENT this long after it went is asked about
SETTLE_WITHIN = timedelta(hours=48)  # carriers report within this; older messages stay as they are
PAUSE_KEY = "sms:provider-paused-until"


JOB_FIELDS = [
    "state",
    "reason",
    "deferred_until",
    "lease_until",
    "number",
    "body",
    "segments",
    "cost",
    "sent_at",
    "attempts",
]


@dataclass
class Outcome:
    """What one run did."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    held: int = 0  # deferred or waiting behind a gate
    reconciled: int = 0  # found already sent at the provider
    requeued: int = 0  # found not sent: queued again
    completed: int = 0  # campaigns finished
    gates: Counter[str] = field(default_factory=Counter)
    # The provider asked to be left alone until then (a rate limit, or a wait it named): the run asked no more of it.
    paused_until: datetime | None = None


def provider_paused(now: datetime) -> datetime | None:
    """When the SMS provider may be asked again, while it has asked Keel to wait (a 429); else None."""
    return pauses.paused_until(PAUSE_KEY, now)


def provider_pause(until: datetime, now: datetime) -> None:
    """Ask the SMS provider nothing more, from any worker, before ``until``."""
    kept = pauses.pause(PAUSE_KEY, until, now)
    logger.warning("sms: the provider asked Keel to wait; it is asked nothing before %s", kept.isoformat())


def reconcile(*, provider: MessageProvider | None = None, outcome: Outcome | None = None) -> Outcome:
    """Settle jobs left SENDING past their lease: SENT when the provider has the message, else QUEUED again."""
    provider = provider or get_provider()
    outcome = outcome or Outcome()
    now = timezone.now()
    with transaction.atomic():
        stale = list(
            SendJob.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=JobState.SENDING, lease_until__lt=now)
            .order_by("id")
            .values_list("id", "body", "sent_at", "contact__phone_e164", "number__phone_e164", "attempts")[
                :RECONCILE_LIMIT
            ]
        )
        found_rows: list[list[object]] = []
        again: list[list[object]] = []
        for index, (job_id, body, sent_at, to, from_, _attempts) in enumerate(stale):
            try:
                found = provider.find(
                    to=to, from_=from_ or "", body=body, sent_after=(sent_at or now) - timedelta(minutes=1)
                )
            except ProviderError as error:
                logger.warning("sms job %s: could not ask the provider (%s); trying later", job_id, error.message)
                until = now + wait_before_retry(RETRY_AFTER, error.retry_after, longest=RETRY_MOST)
                found_rows.append([job_id, JobState.SENDING, None, error.code or "", until])
                if error.asks_to_wait:
                    # Asking about the others now would be refused too: they are asked about after the same wait.
                    later = [row[0] for row in stale[index + 1 :]]
                    SendJob.objects.filter(pk__in=later).update(lease_until=until)
                    outcome.paused_until = until
                    break
                continue
            if found is not None:
                found_rows.append([job_id, JobState.SENT, found.sid, "", None])
                outcome.reconciled += 1
            else:
                again.append([job_id, JobState.QUEUED, "", None, None, None, "", 0, Decimal("0"), None])
                outcome.requeued += 1
        update_rows(SendJob, ["state", "provider_sid", "error_code", "lease_until"], found_rows)
        update_rows(SendJob, [*JOB_FIELDS[:-1]], again)
        if again:
            # The message never left: its short link was never seen, and the next attempt makes a new one.
            ShortLink.objects.filter(job_id__in=[row[0] for row in again]).delete()
    return outcome


def settle_sent(*, provider: MessageProvider | None = None, limit: int = RECONCILE_LIMIT) -> int:
    """Ask the provider about messages still SENT some minutes after they went (their final status callback was
    lost, or arrived before the sid was recorded) and apply what it says as a status callback would. Looks back
    ``SETTLE_WITHIN``; returns how many jobs changed."""
    from sms.services.callbacks import Outcome as Applied
    from sms.services.callbacks import status_apply

    provider = provider or get_provider()
    now = timezone.now()
    if provider_paused(now) is not None:
        return 0
    waiting = (
        SendJob.objects.filter(state=JobState.SENT, provider_sid__isnull=False)
        .filter(sent_at__lt=now - SETTLE_AFTER, sent_at__gte=now - SETTLE_WITHIN)
        .order_by("sent_at")
        .values_list("provider_sid", flat=True)[:limit]
    )
    changed = 0
    for sid in list(waiting):
        try:
            state = provider.fetch(str(sid))
        except ProviderError as error:
            logger.info("sms %s: could not ask the provider (%s)", sid, error.message)
            if error.asks_to_wait:  # the rest would be refused too; they are asked about after the wait
                provider_pause(now + wait_before_retry(RETRY_AFTER, error.retry_after, longest=RETRY_MOST), now)
                break
            continue
        params = {"MessageSid": state.sid, "MessageStatus": state.status, "ErrorCode": state.error_code or ""}
        if state.price is not None:
            params["Price"] = str(state.price)
        if status_apply(params).outcome == Applied.APPLIED:
            changed += 1
    return changed


def complete_finished() -> int:
    """Mark RUNNING campaigns with nothing left to send COMPLETED, announcing each once."""
    pending = SendJob.objects.filter(campaign=OuterRef("pk"), state__in=[JobState.QUEUED, JobState.SENDING])
    done = 0
    for campaign_id in (
        Campaign.objects.filter(status=CampaignStatus.RUNNING).exclude(Exists(pending)).values_list("id", flat=True)
    ):
        with transaction.atomic():
            campaign = (
                Campaign.objects.select_for_update(skip_locked=True)
                .select_related("organization")
                .filter(pk=campaign_id, status=CampaignStatus.RUNNING)
                .exclude(Exists(pending))
                .first()
            )
            if campaign is None:
                continue
            campaign.status = CampaignStatus.COMPLETED
            campaign.completed_at = timezone.now()
            campaign.save(update_fields=["status", "completed_at", "updated_at"])
            states = dict(
                SendJob.objects.filter(campaign=campaign)
                .values("state")
                .annotate(n=Count("id"))
                .values_list("state", "n")
            )
            publish(
                campaign.organization,
                "campaign.completed",
                {"id": str(campaign.pk), "name": campaign.name, "jobs": {str(k): int(v) for k, v in states.items()}},
            )
            done += 1
    return done
