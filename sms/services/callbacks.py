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
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from sms.models import STATE_RANK, Contact, DncReason, JobState, SendJob, StatusCallback
from sms.services.contacts import dnc_add
from tenancy.errors import ServiceValidationError
from tenancy.models import Organization
from tenancy.statements import ASYNCHRONOUS_COMMIT, statement_cursor

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
    """Apply one status callback (its form parameters, signature already checked).

    Two callbacks for the same message may run at once, so none reads the job and writes it back. The callback is
    recorded with ``INSERT ... ON CONFLICT DO NOTHING``: a repeat inserts nothing (after waiting for a concurrent
    original to commit). The job moves with an ``UPDATE`` whose ``WHERE`` admits only the states of lower rank than
    the target, which the database checks again against the row as the other callback left it. The record and the
    job's change happen together or not at all. Only the job's row is written: its organization and contact stay
    free for the organization's other callbacks and services.

    On PostgreSQL a callback without a price or a do-not-contact code (nearly all of them) is one statement, which
    commits without waiting for the disk (see ``_apply_at_once``); the others, and every callback on SQLite, take the
    same steps one statement at a time in a transaction.
    """
    callback = _parse(params)
    target = TARGETS.get(callback.status)
    dnc_reason = DNC_CODES.get(callback.error_code) if callback.status in FAILURES else None
    if connection.vendor == "postgresql" and callback.price is None and dnc_reason is None:
        return _apply_at_once(callback, target)
    return _apply_in_steps(callback, target, dnc_reason)


def _unknown(callback: _Callback) -> StatusResult:
    logger.warning("twilio status %r for unknown message %s", callback.status, callback.sid)
    return StatusResult(sid=callback.sid, status=callback.status, outcome=Outcome.UNKNOWN)


def _inert(callback: _Callback) -> None:
    logger.info("twilio status %r for message %s changes nothing", callback.status, callback.sid)


def _apply_at_once(callback: _Callback, target: JobState | None) -> StatusResult:
    """Find the job, record the callback and move the job in one statement (PostgreSQL)."""
    now = timezone.now()
    values: list[Any] = []
    before: list[str] = []
    if target is None:
        moved = 'SELECT NULL AS "state" WHERE FALSE'
    else:
        sets, values = _moves(target, callback, now)
        before = list(_BEFORE[target])
        moved = (
            f'UPDATE "{_JOB}" SET {", ".join(sets)} WHERE "id" = (SELECT "id" FROM job) '  # noqa: S608
            f'AND "state" IN ({", ".join(["%s"] * len(before))}) AND EXISTS (SELECT 1 FROM recorded) RETURNING "state"'
        )
    # The job as the statement began, whether the callback was recorded (not a repeat), and the state the job moved
    # to (none when it moved nowhere). On its own (autocommit) the statement commits without waiting for the disk
    # (ASYNCHRONOUS_COMMIT). If PostgreSQL itself crashes, the callbacks of its last fraction of a second may be
    # missing: their jobs are still SENT, and settle_sent asks Twilio about every job still SENT 10 minutes after it
    # went and applies the answer as the callback would have.
    asynchronous = connection.get_autocommit()
    sql = (
        f'WITH job AS (SELECT "id", "state" FROM "{_JOB}" WHERE "provider_sid" = %s), '  # noqa: S608
        f'recorded AS (INSERT INTO "{_CALLBACK}" ("sid", "status", "received_at") SELECT %s, %s, %s FROM job '
        'ON CONFLICT ("sid", "status") DO NOTHING RETURNING 1), '
        f"moved AS ({moved}) "
        'SELECT job."id", job."state", EXISTS (SELECT 1 FROM recorded), (SELECT "state" FROM moved) FROM job'
        + (f", ({ASYNCHRONOUS_COMMIT}) AS asynchronous" if asynchronous else "")
    )
    with statement_cursor() as cursor:
        cursor.execute(sql, [callback.sid, callback.sid, callback.status, now, *values, *before])
        row = cursor.fetchone()
    if row is None:
        return _unknown(callback)
    job_id, state, recorded, moved_to = row
    if target is None:
        _inert(callback)
    if not recorded:
        return StatusResult(callback.sid, callback.status, Outcome.DUPLICATE, job_id, _job_state(job_id))
    if moved_to is not None:
        return StatusResult(callback.sid, callback.status, Outcome.APPLIED, job_id, moved_to)
    if target is not None and STATE_RANK[target] > STATE_RANK[JobState(state)]:
        state = _job_state(job_id)  # another callback moved the job first: report where it left it
    return StatusResult(callback.sid, callback.status, Outcome.UNCHANGED, job_id, state)


def _apply_in_steps(callback: _Callback, target: JobState | None, dnc_reason: str | None) -> StatusResult:
    """Find the job, then record the callback and move the job in a transaction; a callback that can change nothing
    but its own record needs none."""
    job = _job_find(callback.sid)
    if job is None:
        return _unknown(callback)
    if target is None:
        _inert(callback)
    # States only move forward, so a job already at or past the target stays there whatever happens meanwhile.
    advance = target if target is not None and STATE_RANK[target] > STATE_RANK[JobState(job.state)] else None
    writes = advance is not None or callback.price is not None or dnc_reason is not None
    with transaction.atomic() if writes else nullcontext():
        if not _callback_record(callback):
            return StatusResult(callback.sid, callback.status, Outcome.DUPLICATE, job.id, _job_state(job.id))
        state: str | None = job.state
        changed = False
        if advance is not None:
            changed = _job_advance(job.id, advance, callback)
            state = advance if changed else None  # another callback moved it first: read where it left it
        if callback.price is not None and not changed:
            changed = _price_record(job.id, callback.price)
        if state is None:
            state = _job_state(job.id)
        if dnc_reason is not None:
            organization = Organization.objects.get(pk=job.organization_id)
            phone = Contact.objects.for_org(organization).values_list("phone_e164", flat=True).get(pk=job.contact_id)
            dnc_add(
                organization=organization,
                phone_e164=phone,
                reason=dnc_reason,
                source=f"Twilio error {callback.error_code} on {callback.sid}",
            )
    outcome = Outcome.APPLIED if changed else Outcome.UNCHANGED
    return StatusResult(callback.sid, callback.status, outcome, job.id, state)


class _Job(NamedTuple):
    id: int
    state: str
    organization_id: Any
    contact_id: int


# The statements are written out: a callback is a few small, fixed ones, and building them through the ORM would
# cost more than running them.
_JOB = SendJob._meta.db_table
_CALLBACK = StatusCallback._meta.db_table
_FIND = f'SELECT "id", "state", "organization_id", "contact_id" FROM "{_JOB}" WHERE "provider_sid" = %s'  # noqa: S608
_STATE = f'SELECT "state" FROM "{_JOB}" WHERE "id" = %s'  # noqa: S608
_RECORD = (
    f'INSERT INTO "{_CALLBACK}" ("sid", "status", "received_at") VALUES (%s, %s, %s) '  # noqa: S608
    'ON CONFLICT ("sid", "status") DO NOTHING'
)
_PRICE = (
    f'UPDATE "{_JOB}" SET "provider_price" = %s, "updated_at" = %s '  # noqa: S608
    'WHERE "id" = %s AND ("provider_price" IS NULL OR "provider_price" <> %s)'
)
# The states each target may be reached from: those of lower rank.
_BEFORE = {
    target: tuple(state.value for state, rank in STATE_RANK.items() if rank < STATE_RANK[target])
    for target in set(TARGETS.values())
}


def _moves(target: JobState, callback: _Callback, now: datetime) -> tuple[list[str], list[Any]]:
    """The ``SET`` assignments (and their parameters) that move a job to ``target``, with the callback's price."""
    at = connection.ops.adapt_datetimefield_value(now)
    # A job still SENDING is marked sent now, and its claim on it (the lease) ends.
    sets = ['"state" = %s', '"sent_at" = COALESCE("sent_at", %s)', '"lease_until" = NULL', '"updated_at" = %s']
    values: list[Any] = [target.value, at, at]
    if target == JobState.DELIVERED:
        sets.append('"delivered_at" = %s')
        values.append(at)
    if target == JobState.FAILED:
        sets.append('"error_code" = %s')
        values.append(callback.error_code)
    if callback.price is not None:
        sets.append('"provider_price" = %s')
        values.append(connection.ops.adapt_decimalfield_value(callback.price))
    return sets, values


def _job_find(sid: str) -> _Job | None:
    with connection.cursor() as cursor:
        cursor.execute(_FIND, [sid])
        row = cursor.fetchone()
    return None if row is None else _Job(*row)


def _job_state(job_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(_STATE, [job_id])
        row = cursor.fetchone()
    return None if row is None else row[0]


def _callback_record(callback: _Callback) -> bool:
    """Record the callback's ``(sid, status)``; False when it was recorded before."""
    received = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_RECORD, [callback.sid, callback.status, received])
        return cursor.rowcount == 1


def _job_advance(job_id: int, target: JobState, callback: _Callback) -> bool:
    """Move the job to ``target`` if it is still in a state of lower rank; whether it moved."""
    sets, values = _moves(target, callback, timezone.now())
    before = _BEFORE[target]
    sql = (
        f'UPDATE "{_JOB}" SET {", ".join(sets)} '  # noqa: S608
        f'WHERE "id" = %s AND "state" IN ({", ".join(["%s"] * len(before))})'
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, job_id, *before])
        return cursor.rowcount == 1


def _price_record(job_id: int, price: Decimal) -> bool:
    """Store the price Twilio charged for the message; whether it was not the one stored already."""
    value = connection.ops.adapt_decimalfield_value(price)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_PRICE, [value, now, job_id, value])
        return cursor.rowcount == 1
