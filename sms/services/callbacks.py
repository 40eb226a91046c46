"""Twilio's status callbacks: what happened to a message after it was handed over.

Each callback names the message (``MessageSid``) and its new status (``MessageStatus``). It is applied once:
``StatusCallback`` is unique on ``(sid, status)``, so a repeat changes nothing. It moves the send job forward only
(``STATE_RANK``): callbacks arrive out of order, and a late ``sent`` after ``delivered`` is ignored.

Twilio's statuses and what they make of the job:

- ``queued``, ``accepted``, ``scheduled``, ``sending``: the message is with Twilio. Holding its sid already means
  the job was sent, so these take the job no further than SENT.
- ``sent``: SENT (handed to the carrier).
- ``delivered``, ``read``: DELIVERED, with ``delivered_at``.
- ``undelivered``, ``failed``, ``canceled``: FAILED, with Twilio's ``ErrorCode`` in ``error_code``.
- anything else (``partially_delivered``, ``receiving``, ...): recorded, logged, no change.

A failure with error code 21610 (the recipient replied STOP to Twilio itself) or 30005 / 30006 (unknown number,
landline) also puts the number on the organization's do-not-contact list: messaging it again cannot succeed.

``Price``, when a callback reports it, is stored as a positive amount in ``provider_price`` (Twilio writes charges
as negative numbers). A callback for a sid no job holds is answered as handled (Twilio would otherwise retry it)
and logged, and nothing is stored for it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from sms.models import STATE_RANK, DncReason, JobState, SendJob, StatusCallback
from sms.services.contacts import dnc_add
from tenancy.errors import ServiceValidationError

logger = logging.getLogger(__name__)

TARGETS = {
    "queued": JobState.SENT,
    "accepted": JobState.SENT,
    "scheduled": JobState.SENT,
    "sending": JobState.SENT,
    "sent": JobState.SENT,
    "delivered": JobState.DELIVERED,
    "read": JobState.DELIVERED,
    "undelivered": JobState.FAILED,
    "failed": JobState.FAILED,
    "canceled": JobState.FAILED,
}
FAILURES = frozenset(status for status, state in TARGETS.items() if state == JobState.FAILED)
# Failure codes that say the number must not be messaged again, and the do-not-contact reason each gives.
DNC_CODES = {"21610": DncReason.STOP_KEYWORD, "30005": DncReason.BOUNCED, "30006": DncReason.BOUNCED}
PRICE_PLACES = Decimal("0.0001")  # SendJob.provider_price has four decimal places
MAX_PRICE = Decimal("999999.9999")


class Outcome:
    APPLIED = "applied"  # the job changed
    UNCHANGED = "unchanged"  # new callback, but it would have moved the job backwards (or nowhere)
    DUPLICATE = "duplicate"  # this (sid, status) was applied before
    UNKNOWN = "unknown"  # no job holds the sid


@dataclass(frozen=True)
class StatusResult:
    sid: str
    status: str
    outcome: str
    job_id: int | None = None
    state: str | None = None  # the job's state after the callback


@dataclass(frozen=True)
class _Callback:
    sid: str
    status: str
    error_code: str
    price: Decimal | None


def _parse(params: Mapping[str, str]) -> _Callback:
    """The callback's fields, checked; ServiceValidationError naming Twilio's parameter when one is unusable."""
    errors: dict[str, list[str]] = {}
    sid = (params.get("MessageSid") or params.get("SmsSid") or "").strip()
    if not sid:
        errors["MessageSid"] = ["Required."]
    elif len(sid) > 64:
        errors["MessageSid"] = ["At most 64 characters."]
    status = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    if not status:
        errors["MessageStatus"] = ["Required."]
    elif len(status) > 20:
        errors["MessageStatus"] = ["At most 20 characters."]
    error_code = (params.get("ErrorCode") or "").strip()
    if len(error_code) > 20:
        errors["ErrorCode"] = ["At most 20 characters."]
    price = None
    raw_price = (params.get("Price") or "").strip()
    if raw_price:
        try:
            price = abs(Decimal(raw_price))
        except InvalidOperation:
            errors["Price"] = [f"{raw_price[:40]!r} is not a number."]
        else:
            if not price.is_finite() or price > MAX_PRICE:
                errors["Price"] = [f"{raw_price[:40]!r} is not a price."]
                price = None
            else:
                price = price.quantize(PRICE_PLACES)
    if errors:
        raise ServiceValidationError(errors)
    return _Callback(sid=sid, status=status, error_code=error_code, price=price)


def status_apply(params: Mapping[str, str]) -> StatusResult:
    """Apply one status callback (its form parameters, signature already checked) in one transaction, with the
    job's row locked so that two callbacks for the same message are applied one after the other."""
    callback = _parse(params)
    with transaction.atomic():
        # The sid is Twilio's name for one message, unique across every organization: the callback carries no
        # organization of its own, so the job is found by it alone. Only the job's row is locked: its organization
        # and contact (read only to put a number on the do-not-contact list) stay free for the organization's other
        # callbacks and services.
        job = SendJob.objects.select_for_update(of=("self",)).filter(provider_sid=callback.sid).first()
        if job is None:
            logger.warning("twilio status %r for unknown message %s", callback.status, callback.sid)
            return StatusResult(sid=callback.sid, status=callback.status, outcome=Outcome.UNKNOWN)
        try:
            with transaction.atomic():
                StatusCallback.objects.create(sid=callback.sid, status=callback.status)
        except IntegrityError:
            return StatusResult(callback.sid, callback.status, Outcome.DUPLICATE, job.pk, job.state)
        changed = _apply(job, callback)
        if callback.status in FAILURES and callback.error_code in DNC_CODES:
            dnc_add(
                organization=job.organization,
                phone_e164=job.contact.phone_e164,
                reason=DNC_CODES[callback.error_code],
                source=f"Twilio error {callback.error_code} on {callback.sid}",
            )
    outcome = Outcome.APPLIED if changed else Outcome.UNCHANGED
    return StatusResult(callback.sid, callback.status, outcome, job.pk, job.state)


def _apply(job: SendJob, callback: _Callback) -> bool:
    """Move ``job`` forward as the callback says, and record its price; whether anything changed."""
    target = TARGETS.get(callback.status)
    if target is None:
        logger.info("twilio status %r for message %s changes nothing", callback.status, callback.sid)
    fields: list[str] = []
    if target is not None and STATE_RANK[target] > STATE_RANK[JobState(job.state)]:
        now = timezone.now()
        job.state = target
        fields.append("state")
        if job.sent_at is None:
            job.sent_at = now
            fields.append("sent_at")
        if target == JobState.DELIVERED:
            job.delivered_at = now
            fields.append("delivered_at")
        if target == JobState.FAILED:
            job.error_code = callback.error_code
            fields.append("error_code")
        if job.lease_until is not None:
            job.lease_until = None
            fields.append("lease_until")
    if callback.price is not None and callback.price != job.provider_price:
        job.provider_price = callback.price
        fields.append("provider_price")
    if fields:
        job.save(update_fields=[*fields, "updated_at"])
    return bool(fields)
