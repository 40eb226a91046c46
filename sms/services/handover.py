"""Handing a claimed batch of campaign messages to the provider, and recording its answers.

:func:`send_batch` is the third step of a dispatch run (``sms.services.dispatch``): each message of the batch goes
to the provider in turn, and the answers are recorded every ``RECORD_EVERY`` messages or ``RECORD_SECONDS``:

- accepted: SENT with the provider's sid;
- refused for good: FAILED with the provider's error code;
- failed in a way that may pass (timeout, outage, rate limit): left SENDING, as the provider may have accepted it,
  and looked up after :func:`retry_wait` (2, 4, 8 ... minutes) or the provider's ``Retry-After`` when longer, at
  most ``RETRY_MOST``.

When the provider refuses for a while (HTTP 429, or a retryable refusal naming a wait), the rest of the batch is held
back: those jobs go back to QUEUED, due after the provider's wait (``RETRY_AFTER``, or its ``Retry-After`` when
longer, at most ``RETRY_MOST``; not the refused job's own backoff, which grows with its attempts), with their attempt,
counters, credits and short links given back, as if they had never been claimed (reason ``PROVIDER_WAIT``).
"""

from __future__ import annotations

import logging
import time as clock
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import SmsCreditEntry
from msp.retry_after import wait_before_retry
from sms import counters
from sms.models import JobState, SendJob, ShortLink, SmsSettings
from sms.providers.base import MessageProvider, OutboundMessage, ProviderError
from sms.services.settle import RETRY_AFTER, RETRY_MOST, Outcome
from sms.services.tallies import take_from_counters
from tenancy.recordset import update_rows

logger = logging.getLogger(__name__)

RECORD_EVERY = 500  # provider answers recorded per transaction, or every RECORD_SECONDS, whichever comes first
RECORD_SECONDS = 1.0
PROVIDER_WAIT = "provider_wait"  # reason of a job not sent because the provider asked to be left alone for a while


@dataclass(frozen=True)
class Number:
    id: uuid.UUID
    phone: str
    per_second: int
    cap: int  # today's warm-up cap
    day_key: str
    second_key: str


@dataclass(frozen=True)
class Send:
    job_id: int
    message: OutboundMessage
    attempt: int = 1  # this send's number among the job's attempts
    number: Number | None = None  # what its claim counted, given back if it is not sent after all
    charge: Decimal = Decimal("0")
    credits: int = 0


@dataclass
class Batch:
    organization_id: uuid.UUID
    claimed: int
    sends: list[Send]
    lease_until: datetime  # the claim's lease: a job still SENDING with it is still this batch's
    windows: dict[str, datetime]  # the window of each counter the claim counted in


def send_batch(batch: Batch, provider: MessageProvider, outcome: Outcome) -> None:
    """Hand each message to the provider; record the answers every ``RECORD_EVERY`` messages or ``RECORD_SECONDS``.
    Stops at a refusal that asks to wait (:attr:`ProviderError.asks_to_wait`): the messages after it are held back."""
    answers: list[list[object]] = []
    sids: list[str] = []
    recorded = clock.monotonic()
    for index, send in enumerate(batch.sends):
        try:
            state = provider.send(send.message)
        except ProviderError as error:
            if error.retryable:
                # It may have been accepted: leave it SENDING, to be reconciled (looked up) after a while.
                until = timezone.now() + wait_before_retry(
                    retry_wait(send.attempt), error.retry_after, longest=RETRY_MOST
                )
                answers.append([send.job_id, JobState.SENDING, None, error.code or "", until])
                if error.asks_to_wait:
                    # The provider's wait, not this job's growing backoff, holds back the rest and every later run.
                    pause = timezone.now() + wait_before_retry(RETRY_AFTER, error.retry_after, longest=RETRY_MOST)
                    logger.warning("sms: the provider asks to wait until %s (%s)", pause.isoformat(), error.message)
                    _record(answers, sids)
                    _hold_back(batch, batch.sends[index + 1 :], pause, outcome)
                    outcome.paused_until = pause
                    return
            else:
                logger.info("sms job %s refused by the provider: %s", send.job_id, error.message)
                answers.append([send.job_id, JobState.FAILED, None, error.code or "refused", None])
                outcome.failed += 1
        else:
            answers.append([send.job_id, JobState.SENT, state.sid, "", None])
            sids.append(state.sid)
            outcome.sent += 1
        if len(answers) >= RECORD_EVERY or clock.monotonic() - recorded > RECORD_SECONDS:
            _record(answers, sids)
            answers, sids, recorded = [], [], clock.monotonic()
    _record(answers, sids)


def _hold_back(batch: Batch, unsent: Sequence[Send], until: datetime, outcome: Outcome) -> None:
    """Queue again, due at ``until``, the claimed jobs that were never handed to the provider, as if they had not been
    claimed: their attempt, counters, credits and short links are given back.

    Only jobs still under this batch's claim move (SENDING, with its lease): a job whose lease ran out meanwhile
    belongs to ``reconcile``. The organization is locked while its counters change, as when they were counted."""
    if not unsent:
        return
    by_job = {send.job_id: send for send in unsent}
    with transaction.atomic():
        organization = SmsSettings.objects.select_for_update(of=("self",)).filter(organization_id=batch.organization_id)
        list(organization)  # read for its row lock alone
        claimed = SendJob.objects.select_for_update(of=("self",)).filter(
            pk__in=list(by_job), state=JobState.SENDING, lease_until=batch.lease_until, provider_sid__isnull=True
        )
        held = list(claimed.values_list("id", flat=True))
        if not held:
            return
        SendJob.objects.filter(pk__in=held).update(
            state=JobState.QUEUED,
            reason=PROVIDER_WAIT,
            deferred_until=until,
            lease_until=None,
            number=None,
            body="",
            segments=0,
            cost=Decimal("0"),
            sent_at=None,
            attempts=F("attempts") - 1,
            updated_at=timezone.now(),
        )
        ShortLink.objects.filter(job_id__in=held).delete()  # never seen; the next claim makes new ones
        _give_back(batch, [by_job[job_id] for job_id in held])
    outcome.held += len(held)


def _give_back(batch: Batch, sends: Sequence[Send]) -> None:
    """Take ``sends`` off the counters their claim added to, and return the credits it spent on them."""
    organization_id = batch.organization_id
    counts: Counter[str] = Counter()
    amounts: defaultdict[str, Decimal] = defaultdict(Decimal)
    for send in sends:
        keys = [counters.rate_key(organization_id)]
        if send.number is not None:
            keys += [send.number.second_key, send.number.day_key]
        counts.update(keys)
        if send.charge:
            amounts[counters.spend_day_key(organization_id)] += send.charge
            amounts[counters.spend_month_key(organization_id)] += send.charge
    take_from_counters([(key, batch.windows[key], counts[key], amounts[key]) for key in counts.keys() | amounts.keys()])
    credits = sum(send.credits for send in sends)
    if credits:
        SmsCreditEntry.objects.create(
            organization_id=organization_id,
            credits=credits,
            reason=f"{len(sends)} campaign messages not sent (the provider asked to wait)",
            source_key=f"sms-dispatch:{uuid.uuid4()}",
        )


def retry_wait(attempt: int) -> timedelta:
    """How long a job whose ``attempt``-th send failed in a way that may pass waits before it is looked up."""
    return min(RETRY_AFTER * 2 ** min(max(attempt - 1, 0), 6), RETRY_MOST)


def _record(answers: list[list[object]], sids: list[str]) -> None:
    if not answers:
        return
    with transaction.atomic():
        update_rows(SendJob, ["state", "provider_sid", "error_code", "lease_until"], answers)
        if sids and settings.SMS_SANDBOX_CALLBACKS and settings.SMS_PROVIDER == "sandbox":
            from sms.tasks import post_sandbox_callbacks

            transaction.on_commit(lambda: post_sandbox_callbacks.delay(sids))
