"""Sending a delivery, with retries.

A delivery is claimed before it is sent: a conditional update that must change exactly one row (it is PENDING, due,
and not held by another worker), which counts the attempt and holds the delivery for ``LEASE``. Two workers given the
same delivery (the task queued after commit, and ``retry_due`` picking it up) send it once; a worker that dies while
sending releases it when the lease runs out, and the next attempt picks it up (an SMS first asks the provider whether
the earlier attempt went out).

After a failure that may pass (a timeout, an outage, a rate limit) the delivery waits ``RETRY_DELAYS[attempt - 1]``,
or the wait the provider asked for (``Retry-After``) when that is longer, at most ``RETRY_MOST``, and is sent again
by ``retry_due``; after ``MAX_ATTEMPTS`` it is FAILED with reason ``gave_up``. A refusal that will not pass (an
invalid number, a removed webhook) is FAILED at once with reason ``refused``. A delivery that must not be sent (a
number on the do-not-contact list) is SKIPPED with its reason.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from msp.retry_after import wait_before_retry
from notifications.models import BulkSend, BulkStatus, Delivery, DeliveryStatus, Reason
from notifications.senders import SENDERS, SendError, Sent, Skipped

logger = logging.getLogger(__name__)

RETRY_DELAYS = (60, 300, 1800, 7200)  # seconds to wait after attempts 1..4: the last try about 2.5 hours in
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# The longest a provider's Retry-After may stretch one wait: the schedule's own longest. Retrying before the provider's
# time only spends one of the few attempts on a certain refusal, but a notice is meant to arrive today: a provider
# asking for a day (or a broken header) must not park it that long, so it waits no longer than its last retry would.
RETRY_MOST = timedelta(seconds=max(RETRY_DELAYS))
LEASE = timedelta(minutes=2)  # longer than any one send (Slack's timeout is 10 s)
DUE_BATCH = 500
BULK_STALLED = timedelta(minutes=5)


def _claim(delivery_id: Any) -> Delivery | None:
    now = timezone.now()
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .update(
            locked_until=now + LEASE,
            attempts=F("attempts") + 1,
            first_attempt_at=Coalesce("first_attempt_at", Value(now, output_field=DateTimeField())),
        )
    )
    if claimed != 1:
        return None
    return Delivery.objects.select_related("organization", "notice", "notification__user").get(pk=delivery_id)


def _finish(delivery: Delivery, **values: Any) -> None:
    """Record the attempt's outcome and release the claim."""
    values.setdefault("locked_until", None)
    for name, value in values.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=[*values, "updated_at"])


def delivery_send(*, delivery_id: Any) -> str:
    """Send one delivery if it is due and nobody else holds it; its status afterwards ("" when not claimed)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return ""
    try:
        outcome = SENDERS[delivery.channel](delivery)  # type: ignore[index]
    except SendError as error:
        return _failed(delivery, error)
    except Exception as error:  # a bug or an unexpected answer: keep the delivery, try again later
        logger.exception("notification delivery %s failed", delivery.pk)
        return _failed(delivery, SendError(f"{type(error).__name__}: {error}", retryable=True))
    now = timezone.now()
    if isinstance(outcome, Skipped):
        _finish(delivery, status=DeliveryStatus.SKIPPED, reason=outcome.reason, last_error=outcome.detail,
                next_attempt_at=None)  # fmt: skip
    elif isinstance(outcome, Sent):
        _finish(delivery, status=DeliveryStatus.SENT, sent_at=now, provider_id=outcome.provider_id, last_error="",
                next_attempt_at=None)  # fmt: skip
    return delivery.status


def _failed(delivery: Delivery, error: SendError) -> str:
    message = error.message[:500]
    if error.retryable and delivery.attempts < MAX_ATTEMPTS:
        backoff = timedelta(seconds=RETRY_DELAYS[delivery.attempts - 1])
        wait = wait_before_retry(backoff, error.retry_after, longest=RETRY_MOST)
        _finish(delivery, last_error=message, next_attempt_at=timezone.now() + wait)
    else:
        reason = Reason.GAVE_UP if error.retryable else Reason.REFUSED
        _finish(delivery, status=DeliveryStatus.FAILED, reason=reason, last_error=message, next_attempt_at=None)
    return delivery.status


def deliveries_due(*, limit: int = DUE_BATCH) -> list[str]:
    """Pending deliveries whose time has come and that no worker holds: retries, and first attempts whose task was
    lost (a broker outage, a dead worker). Oldest due first."""
    now = timezone.now()
    due = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lte=now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    return [str(pk) for pk in due]


def bulk_sends_stalled() -> list[str]:
    """Bulk sends queued but never started, or whose job stopped giving signs of life."""
    cutoff = timezone.now() - BULK_STALLED
    stalled = BulkSend.objects.filter(
        Q(status=BulkStatus.QUEUED, queued_at__lte=cutoff) | Q(status=BulkStatus.RUNNING, heartbeat_at__lte=cutoff)
    ).values_list("pk", flat=True)
    return [str(pk) for pk in stalled]
