"""Stripe webhooks: receive (verify, store once, answer quickly) and process (after commit, once, in order-safe
handlers).

A delivery is stored only when its signature is right and fresh. ``event_id`` is unique, so a replay, even two at
the same moment, stores nothing and is answered 200. Processing runs in a Celery task after the insert commits; it
claims the row with ``SELECT … FOR UPDATE SKIP LOCKED`` and does the handler's work in the same transaction as
marking the event done, so a crash leaves the event pending (the retry beat picks it up) and never half-done.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import signatures
from billing.models import StripeEvent, StripeEventStatus
from tenancy.errors import ServiceValidationError
from tenancy.text import unstorable

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_PAYLOAD_BYTES = 512 * 1024
RETRY_GRACE = timedelta(minutes=2)
MAX_CREATED = 2**53  # unix seconds far past any real event, and well inside the column (a bigint)


class WebhookSignatureError(Exception):
    """The delivery's signature is missing, wrong or stale; nothing was stored."""


Handler = Callable[[StripeEvent], str]
HANDLERS: dict[str, Handler] = {}


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for type_ in types:
            HANDLERS[type_] = handler
        return handler

    return register


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ServiceValidationError({"body": ["The body is not JSON."]}) from None
    if not isinstance(event, dict):
        raise ServiceValidationError({"body": ["The body is not a JSON object."]})
    if unstorable(event):
        raise ServiceValidationError({"body": ["Contains a NUL or an unpaired surrogate character."]})
    errors: dict[str, list[str]] = {}
    if not isinstance(event.get("id"), str) or not event["id"] or len(event["id"]) > 100:
        errors["id"] = ["An event id is required."]
    if not isinstance(event.get("type"), str) or not event["type"] or len(event["type"]) > 100:
        errors["type"] = ["An event type is required."]
    created = event.get("created")
    if isinstance(created, bool) or not isinstance(created, int) or not 0 <= created < MAX_CREATED:
        errors["created"] = ["The event's created time (unix seconds) is required."]
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        errors["data.object"] = ["The event has no object."]
    if errors:
        raise ServiceValidationError(errors)
    return event


def stripe_event_receive(*, payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify and store one delivery. Returns the event and whether this delivery stored it (False: a replay).

    Raises WebhookSignatureError (nothing stored) or ServiceValidationError for a body that is not an event.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ServiceValidationError({"body": [f"The body is larger than {MAX_PAYLOAD_BYTES} bytes."]})
    try:
        signatures.verify(
            payload,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=settings.STRIPE_WEBHOOK_TOLERANCE,
            now=int(timezone.now().timestamp()),
        )
    except signatures.SignatureError as refused:
        raise WebhookSignatureError(str(refused)) from None
    event = _parse(payload)
    obj = event["data"]["object"]
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=event["id"],
                type=event["type"],
                created=event["created"],
                livemode=bool(event.get("livemode")),
                object_id=str(obj.get("id") or "")[:100],
                payload=event,
                # The task normally runs at once; the retry beat only takes events still pending after this.
                next_attempt_at=timezone.now() + RETRY_GRACE,
            )
            transaction.on_commit(lambda: _enqueue(stored.pk))
    except IntegrityError:
        existing = StripeEvent.objects.filter(event_id=event["id"]).first()
        if existing is None:  # pragma: no cover - the conflicting insert rolled back; let Stripe resend
            raise
        return existing, False
    return stored, True


def _enqueue(event_pk: int) -> None:
    from billing.tasks import process_stripe_event

    try:
        process_stripe_event.delay(event_pk)
    except Exception:  # the broker is down: the retry beat will find the event pending
        logger.warning("could not enqueue Stripe event %s; the retry task will process it", event_pk, exc_info=True)


def stripe_event_process(*, event_pk: int) -> str:
    """Handle one stored event, once. Returns its status afterwards."""
    now = timezone.now()
    try:
        with transaction.atomic():
            event = (
                StripeEvent.objects.select_for_update(skip_locked=True)
                .filter(pk=event_pk, status=StripeEventStatus.PENDING)
                .first()
            )
            if event is None:  # done already, or another worker holds it
                return StripeEventStatus.DONE
            handler = HANDLERS.get(event.type)
            outcome = handler(event) if handler is not None else "not handled"
            event.status = StripeEventStatus.DONE if handler is not None else StripeEventStatus.IGNORED
            event.attempts += 1
            event.last_error = "" if handler is not None else outcome
            event.processed_at = now
            event.save(update_fields=["status", "attempts", "last_error", "processed_at"])
            logger.info("Stripe event %s (%s): %s", event.event_id, event.type, outcome)
            return event.status
    except Exception as failure:
        return _record_failure(event_pk, failure, now)


def _record_failure(event_pk: int, failure: Exception, now: Any) -> str:
    event = StripeEvent.objects.filter(pk=event_pk).first()
    if event is None:
        return StripeEventStatus.FAILED
    attempts = event.attempts + 1
    gave_up = attempts >= MAX_ATTEMPTS
    status = StripeEventStatus.FAILED if gave_up else StripeEventStatus.PENDING
    level = logging.ERROR if gave_up else logging.WARNING
    logger.log(level, "Stripe event %s (%s) failed: %s", event.event_id, event.type, failure, exc_info=True)
    StripeEvent.objects.filter(pk=event_pk, status=StripeEventStatus.PENDING).update(
        status=status,
        attempts=attempts,
        last_error=f"{type(failure).__name__}: {failure}"[:2000],
        next_attempt_at=now + timedelta(seconds=min(15 * 2**attempts, 6 * 3600)),
    )
    return status


def stripe_events_due(*, now: Any = None, limit: int = 200) -> list[int]:
    """Pending events whose (re)try time has come: never enqueued (broker down), or failed and backing off."""
    now = now or timezone.now()
    return list(
        StripeEvent.objects.filter(status=StripeEventStatus.PENDING, next_attempt_at__lte=now)
        .order_by("created", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def stripe_event_requeue(*, event: StripeEvent) -> None:
    """Staff: try a failed event again."""
    StripeEvent.objects.filter(pk=event.pk).exclude(status=StripeEventStatus.DONE).update(
        status=StripeEventStatus.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    transaction.on_commit(lambda: _enqueue(event.pk))
