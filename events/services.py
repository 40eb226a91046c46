"""Publishing and delivering domain events.

``publish`` writes an Event row in the caller's transaction and, after commit, asks a worker to fan it out.
Fan-out creates one Delivery per subscribed handler (unique per event and handler) and runs each delivery as its own
task. A delivery is claimed with a conditional UPDATE, so two workers never run the same one; the handler runs and is
marked DONE in one transaction, so a crash mid-way leaves it claimable again. ``redeliver_stalled`` (beat, every
minute) picks up events never fanned out and deliveries whose worker died or whose retry is due: nothing is lost.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from events import registry
from events.models import Delivery, DeliveryState, Event
from tenancy.models import Organization
from tenancy.recordset import insert_rows

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
CLAIM_TIMEOUT = timedelta(minutes=10)
FANOUT_GRACE = timedelta(minutes=2)


def _json_safe(payload: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def publish(organization: Organization | None, type: str, payload: dict[str, Any]) -> Event:
    """Record ``type`` with ``payload`` in the current transaction; handlers run after it commits."""
    event = Event.objects.create(organization=organization, type=type, payload=_json_safe(payload))

    def _enqueue() -> None:
        from events.tasks import fan_out

        try:
            fan_out.delay(str(event.id))
        except Exception:  # the broker is down: the event is safe in the table and redeliver_stalled sends it
            logger.warning("could not enqueue event %s; it will be redelivered", event.id, exc_info=True)

    transaction.on_commit(_enqueue)
    return event


class Owner(Protocol):
    """An event's organization: an ``Organization``, or any row of one that has its key."""

    @property
    def pk(self) -> Any: ...


def publish_many(items: Sequence[tuple[Owner | None, str, dict[str, Any]]]) -> list[UUID]:
    """``publish`` for many events in one INSERT (a batch job announcing what it changed); returns their ids."""
    if not items:
        return []
    now = timezone.now()
    ids = [uuid4() for _ in items]
    insert_rows(  # the payload is written as ``_json_safe`` would make it
        Event,
        ["id", "organization", "type", "payload", "created_at"],
        [
            (pk, organization.pk if organization else None, type, payload, now)
            for pk, (organization, type, payload) in zip(ids, items, strict=True)
        ],
    )

    def _enqueue() -> None:
        from events.tasks import fan_out_many

        try:
            fan_out_many.delay([str(pk) for pk in ids])
        except Exception:  # the broker is down: the events are safe in the table and redeliver_stalled sends them
            logger.warning("could not enqueue %d events; they will be redelivered", len(ids), exc_info=True)

    transaction.on_commit(_enqueue)
    return ids


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min, ... capped at 1 h."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def event_fan_out(*, event_id: UUID | str) -> list[int]:
    """Create the Delivery rows of an event (once) and return the ids of those still to run."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return []
    for sub in registry.handlers_for(event.type):
        if not sub.wants(event):
            continue
        try:
            with transaction.atomic():
                Delivery.objects.get_or_create(event=event, handler=sub.name)
        except IntegrityError:  # a concurrent fan-out created it first
            pass
    Event.objects.filter(pk=event.pk, fanned_out_at__isnull=True).update(fanned_out_at=timezone.now())
    return list(
        Delivery.objects.filter(event=event, state__in=[DeliveryState.PENDING, DeliveryState.FAILED]).values_list(
            "id", flat=True
        )
    )


def delivery_run(*, delivery_id: int) -> str:
    """Run one delivery if it is due and unclaimed. Returns the state it ends in (or ``skipped``)."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        Q(state__in=[DeliveryState.PENDING, DeliveryState.FAILED], next_attempt_at__lte=now)
        | Q(state=DeliveryState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT),
        pk=delivery_id,
    ).update(state=DeliveryState.RUNNING, claimed_at=now, attempts=F("attempts") + 1)
    if claimed != 1:
        return "skipped"
    delivery = Delivery.objects.select_related("event").get(pk=delivery_id)
    sub = registry.handler(delivery.handler)
    if sub is None:
        Delivery.objects.filter(pk=delivery_id).update(
            state=DeliveryState.DEAD, last_error=f"no handler named {delivery.handler!r} is registered"
        )
        return DeliveryState.DEAD
    try:
        with transaction.atomic():
            sub.func(delivery.event)
            Delivery.objects.filter(pk=delivery_id).update(
                state=DeliveryState.DONE, completed_at=timezone.now(), last_error=""
            )
    except Exception:
        error = traceback.format_exc(limit=5)
        logger.exception("event handler %s failed on %s", delivery.handler, delivery.event_id)
        dead = delivery.attempts >= MAX_ATTEMPTS
        Delivery.objects.filter(pk=delivery_id).update(
            state=DeliveryState.DEAD if dead else DeliveryState.FAILED,
            last_error=error[-4000:],
            next_attempt_at=timezone.now() + retry_delay(delivery.attempts),
        )
        return DeliveryState.DEAD if dead else DeliveryState.FAILED
    return DeliveryState.DONE


def stalled_work(*, now: Any = None) -> tuple[list[str], list[int]]:
    """Events never fanned out, and deliveries that are due or whose worker vanished."""
    now = now or timezone.now()
    events = [
        str(pk)
        for pk in Event.objects.filter(fanned_out_at__isnull=True, created_at__lt=now - FANOUT_GRACE).values_list(
            "id", flat=True
        )[:1000]
    ]
    deliveries = list(
        Delivery.objects.filter(
            Q(state__in=[DeliveryState.PENDING, DeliveryState.FAILED], next_attempt_at__lte=now)
            | Q(state=DeliveryState.RUNNING, claimed_at__lt=now - CLAIM_TIMEOUT)
        ).values_list("id", flat=True)[:1000]
    )
    return events, deliveries
