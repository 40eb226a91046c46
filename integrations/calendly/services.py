"""Calendly webhooks: verify, store once, and move the prospect's qualification as their discovery call is booked,
rescheduled or canceled.

A delivery is handled in the request, in one transaction with the row that records it (the work is one or two row
updates): its ``WebhookEvent.key`` is unique, so a redelivery, even two at the same moment, changes nothing and is
answered 200; anything that fails rolls the whole delivery back and Calendly sends it again. The qualification's
row lock orders deliveries for the same prospect. Status changes go through the qualification services, which publish
``qualification.status_changed`` through the outbox.

Which qualification: the ``utm_content`` the status page's booking link carries (the qualification's id), else the
invitee's email (case-insensitive). A prospect may have one qualification per tier; the one picked is, in order, one
still waiting for a person (not converted, not final) before any other, one whose next step is booking a call
(DISCOVERY_CALL) before the rest, then the most recent. A booking for a qualification whose status a call cannot move
(final, or a customer already) is recorded for staff and changes no status.

Order: Calendly does not promise it. A booking whose cancellation arrived first is stored canceled, and the late
``invitee.created`` is ignored. A reschedule is ``invitee.canceled`` with ``rescheduled: true`` plus a new
``invitee.created``; in either order the qualification stays scheduled and shows the new time. A cancellation moves
the qualification back to the status it had before only when no other call of it is still booked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.calendly import signing
from integrations.calendly.models import Booking, BookingStatus, WebhookEvent
from qualification.models import CALL_SCHEDULABLE_STATUSES, Qualification, QualificationStatus
from qualification.services import qualification_call_canceled, qualification_call_scheduled
from tenancy.errors import ServiceValidationError
from tenancy.text import unstorable

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
CREATED = "invitee.created"
CANCELED = "invitee.canceled"
HANDLED = (CREATED, CANCELED)
ACTOR = "Calendly"


class WebhookSignatureError(Exception):
    """The delivery's signature is missing, wrong or stale; nothing was stored."""


@dataclass(frozen=True)
class InviteeEvent:
    """The parts of an ``invitee.created`` / ``invitee.canceled`` delivery we use."""

    type: str
    created_at: datetime
    invitee_uri: str
    event_uri: str
    email: str
    start_time: datetime
    end_time: datetime
    timezone: str
    rescheduled: bool
    canceled_at: datetime | None
    qualification_id: uuid.UUID | None
    document: dict[str, Any]

    @property
    def key(self) -> str:
        """The delivery's idempotency key (Calendly sends no event id)."""
        natural = "\n".join((self.type, self.invitee_uri, self.created_at.isoformat()))
        return hashlib.sha256(natural.encode()).hexdigest()


@dataclass(frozen=True)
class Receipt:
    duplicate: bool
    outcome: str


# -- parsing ----------------------------------------------------------------------------------------------------------


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _text(errors: dict[str, list[str]], mapping: dict[str, Any], name: str, field: str, limit: int) -> str:
    value = mapping.get(name)
    if not isinstance(value, str) or not value.strip():
        errors[field] = ["This field is required."]
        return ""
    if len(value) > limit:
        errors[field] = [f"At most {limit} characters."]
        return ""
    return value.strip()


def _when(errors: dict[str, list[str]], mapping: dict[str, Any], name: str, field: str) -> datetime | None:
    value = _timestamp(mapping.get(name))
    if value is None:
        errors[field] = ["An ISO 8601 time with an offset is required."]
    return value


def _qualification_id(tracking: Any) -> uuid.UUID | None:
    content = tracking.get("utm_content") if isinstance(tracking, dict) else None
    try:
        return uuid.UUID(content) if isinstance(content, str) else None
    except ValueError:
        return None


def parse(body: bytes) -> InviteeEvent | None:
    """The invitee event in ``body``; None for an event type we do not handle. A body that is not one raises
    ServiceValidationError naming each bad field by its path (``payload.scheduled_event.start_time``)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deep to decode
        raise ServiceValidationError({"body": ["The body is not JSON."]}) from None
    if not isinstance(document, dict):
        raise ServiceValidationError({"body": ["The body is not a JSON object."]})
    if unstorable(document):
        raise ServiceValidationError({"body": ["Contains a NUL or an unpaired surrogate character."]})
    event_type = document.get("event")
    if not isinstance(event_type, str) or not event_type:
        raise ServiceValidationError({"event": ["The event type is required."]})
    if event_type not in HANDLED:
        return None
    errors: dict[str, list[str]] = {}
    created_at = _when(errors, document, "created_at", "created_at")
    payload = document.get("payload")
    if not isinstance(payload, dict):
        errors["payload"] = ["The invitee is required."]
        raise ServiceValidationError(errors)
    invitee_uri = _text(errors, payload, "uri", "payload.uri", 500)
    email = _text(errors, payload, "email", "payload.email", 254).lower()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["payload.email"] = ["Enter a valid email address."]
    start = end = None
    event_uri = str(payload["event"]) if isinstance(payload.get("event"), str) else ""
    scheduled = payload.get("scheduled_event")
    if not isinstance(scheduled, dict):
        errors["payload.scheduled_event"] = ["The scheduled event is required."]
    else:
        start = _when(errors, scheduled, "start_time", "payload.scheduled_event.start_time")
        end = _when(errors, scheduled, "end_time", "payload.scheduled_event.end_time")
        if start and end and end < start:
            errors["payload.scheduled_event.end_time"] = ["The event ends before it starts."]
        if isinstance(scheduled.get("uri"), str):
            event_uri = str(scheduled["uri"])
    rescheduled = payload.get("rescheduled")
    if rescheduled is not None and not isinstance(rescheduled, bool):
        errors["payload.rescheduled"] = ["Give true or false."]
    zone = payload.get("timezone")
    if zone is not None and (not isinstance(zone, str) or len(zone) > 64):
        errors["payload.timezone"] = ["Give a time zone name of at most 64 characters."]
    if errors:
        raise ServiceValidationError(errors)
    assert created_at and start and end  # noqa: S101 - narrowed by errors
    cancellation = payload.get("cancellation")
    canceled_at = _timestamp(cancellation.get("created_at")) if isinstance(cancellation, dict) else None
    return InviteeEvent(
        type=event_type,
        created_at=created_at,
        invitee_uri=invitee_uri,
        event_uri=event_uri[:500],
        email=email,
        start_time=start,
        end_time=end,
        timezone=zone or "",
        rescheduled=bool(rescheduled),
        canceled_at=(canceled_at or created_at) if event_type == CANCELED else None,
        qualification_id=_qualification_id(payload.get("tracking")),
        document=document,
    )


# -- which qualification ----------------------------------------------------------------------------------------------


def _callable(qualification: Qualification) -> bool:
    """A call can still move it (or already did)."""
    return not qualification.converted and (
        qualification.status in CALL_SCHEDULABLE_STATUSES
        or qualification.status == QualificationStatus.DISCOVERY_CALL_SCHEDULED
    )


def pick_qualification(candidates: list[Qualification]) -> Qualification | None:
    """The prospect's qualification a booking belongs to, of those with the invitee's email (see the module's
    docstring for the order)."""
    if not candidates:
        return None
    return min(
        candidates,
        key=lambda q: (
            not _callable(q),
            q.status not in (QualificationStatus.DISCOVERY_CALL, QualificationStatus.DISCOVERY_CALL_SCHEDULED),
            -q.created_at.timestamp(),
        ),
    )


def _find_qualification(event: InviteeEvent) -> Qualification | None:
    if event.qualification_id is not None:
        tracked = Qualification.objects.filter(pk=event.qualification_id).first()
        if tracked is not None:
            return tracked
    return pick_qualification(list(Qualification.objects.filter(customer_email__iexact=event.email)))


# -- handling ---------------------------------------------------------------------------------------------------------


def _previous_status(qualification: Qualification) -> str:
    """The status a cancellation restores: the qualification's own when a call can move it, or the one recorded by
    the booking that already moved it."""
    if qualification.status in CALL_SCHEDULABLE_STATUSES:
        return qualification.status
    if qualification.status == QualificationStatus.DISCOVERY_CALL_SCHEDULED:
        earlier = (
            Booking.objects.filter(qualification=qualification).exclude(previous_status="").order_by("-created_at")
        )
        return earlier.values_list("previous_status", flat=True).first() or ""
    return ""


def _locked(event: InviteeEvent) -> tuple[Qualification | None, Booking | None]:
    """The event's qualification, row-locked, and its booking of this invitee (if any), read under that lock."""
    known = Booking.objects.filter(invitee_uri=event.invitee_uri).only("qualification_id").first()
    target = Qualification(pk=known.qualification_id) if known else _find_qualification(event)
    if target is None:
        return None, None
    qualification = Qualification.objects.select_for_update().get(pk=target.pk)
    booking = Booking.objects.select_for_update().filter(invitee_uri=event.invitee_uri).first()
    return qualification, booking


def _booking_fields(event: InviteeEvent) -> dict[str, Any]:
    return {"event_uri": event.event_uri, "invitee_email": event.email, "start_time": event.start_time,
            "end_time": event.end_time, "timezone": event.timezone}  # fmt: skip


def _on_created(event: InviteeEvent) -> tuple[Booking | None, str]:
    qualification, booking = _locked(event)
    if qualification is None:
        return None, "ignored: no qualification for this invitee"
    if booking is not None:
        if booking.status == BookingStatus.CANCELED:
            return booking, "ignored: this booking was already canceled"
        return booking, "ignored: already booked"
    booking = Booking.objects.create(
        qualification=qualification, invitee_uri=event.invitee_uri, previous_status=_previous_status(qualification),
        status=BookingStatus.SCHEDULED, **_booking_fields(event),
    )  # fmt: skip
    if qualification_call_scheduled(qualification=qualification, meeting_at=event.start_time, actor_label=ACTOR):
        return booking, "scheduled"
    return booking, f"booked; status {qualification.status} kept"


def _on_canceled(event: InviteeEvent) -> tuple[Booking | None, str]:
    qualification, booking = _locked(event)
    if qualification is None:
        return None, "ignored: no qualification for this invitee"
    canceled = {"status": BookingStatus.CANCELED, "canceled_at": event.canceled_at, "rescheduled": event.rescheduled}
    if booking is None:  # the cancellation overtook its booking: remember it, so the booking changes nothing
        booking = Booking.objects.create(
            qualification=qualification, invitee_uri=event.invitee_uri, **canceled, **_booking_fields(event)
        )
        return booking, "recorded: canceled before its booking arrived"
    if booking.status == BookingStatus.CANCELED:
        return booking, "ignored: already canceled"
    for name, value in canceled.items():
        setattr(booking, name, value)
    booking.save(update_fields=[*canceled, "updated_at"])
    if event.rescheduled:
        return booking, "canceled for a reschedule; status kept"
    if Booking.objects.filter(qualification=qualification, status=BookingStatus.SCHEDULED).exists():
        return booking, "canceled; another call is still booked"
    if qualification_call_canceled(
        qualification=qualification, restore_status=booking.previous_status, actor_label=ACTOR
    ):
        return booking, f"canceled; status back to {booking.previous_status}"
    return booking, f"canceled; status {qualification.status} kept"


HANDLERS = {CREATED: _on_created, CANCELED: _on_canceled}


def calendly_webhook_receive(*, body: bytes, signature: str | None) -> Receipt:
    """Verify, store and apply one delivery. Raises WebhookSignatureError or ServiceValidationError (nothing
    written) for a delivery that is not Calendly's, not recent, or not an invitee event we can read."""
    if len(body) > MAX_BODY_BYTES:
        raise ServiceValidationError({"body": [f"The body is larger than {MAX_BODY_BYTES} bytes."]})
    try:
        signing.verify(
            body,
            signature,
            settings.CALENDLY_WEBHOOK_SIGNING_KEY,
            tolerance=settings.CALENDLY_WEBHOOK_TOLERANCE,
            now=int(timezone.now().timestamp()),
        )
    except signing.SignatureError as refused:
        logger.warning("calendly webhook refused: %s", refused)
        raise WebhookSignatureError(str(refused)) from None
    event = parse(body)
    if event is None:
        return Receipt(duplicate=False, outcome="ignored: event type not handled")
    try:
        with transaction.atomic():
            stored = WebhookEvent.objects.create(
                key=event.key, event_type=event.type, invitee_uri=event.invitee_uri, created_at=event.created_at,
                payload=event.document,
            )  # fmt: skip
            booking, outcome = HANDLERS[event.type](event)
            stored.booking, stored.outcome = booking, outcome[:200]
            stored.save(update_fields=["booking", "outcome"])
    except IntegrityError:
        existing = WebhookEvent.objects.filter(key=event.key).first()
        if existing is None:  # pragma: no cover - another constraint; the rollback left nothing, Calendly resends
            raise
        return Receipt(duplicate=True, outcome=existing.outcome)
    logger.info("calendly %s %s: %s", event.type, event.invitee_uri, outcome)
    return Receipt(duplicate=False, outcome=outcome)
