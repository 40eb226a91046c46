"""Publishing and delivering domain events.

``publish`` writes an Event row in the caller's transaction and, after commit, asks a worker to fan it out.
Fan-out creates one Delivery per subscribed handler (unique per event and handler) and runs each delivery as its own
task.

With a shared cache (``EVENTS_RELAY``), the request does not queue a task per event: it rings a doorbell (an
``add`` of one cache key), and only the ring that finds the doorbell silent queues a relay run. The run silences the
doorbell first, then fans out every event not fanned out yet, oldest first, in batches whose rows it locks
(``SKIP LOCKED``: two runs never fan out the same event). An event that commits while a run is busy either rang
after the doorbell was silenced (and queued the next run) or committed before it, and the run's query sees it.
A busy site queues about one relay task per run instead of one per event, and a request spends one cache round trip
instead of a Celery publish. Without a shared cache each event queues its own ``fan_out`` task.

A delivery is claimed with a conditional UPDATE, so two workers never run the same one; the handler runs and is
marked DONE in one transaction, so a crash mid-way leaves it claimable again. ``redeliver_stalled`` (beat, every
minute) picks up events never fanned out and deliveries whose worker died or whose retry is due: nothing is lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID, uuid4

from django.conf import settings
from django.core.cache import cache
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
RELAY_DOORBELL = "events:relay-doorbell"
# A doorbell left ringing by a relay task that was lost stops ringing after this; the next commit queues a new run
# (and redeliver_stalled finds anything older than FANOUT_GRACE meanwhile).
RELAY_DOORBELL_SECONDS = 30
RELAY_BATCH = 200
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

    transaction.on_commit(relay_ring if settings.EVENTS_RELAY else _enqueue)
    return event


def relay_ring() -> None:
    """After a commit that recorded events: make sure a relay run is on its way. Only the ring that finds the
    doorbell silent queues one; a cache or broker outage leaves the events to ``redeliver_stalled``."""
    from events.tasks import relay

    try:
        if not cache.add(RELAY_DOORBELL, 1, RELAY_DOORBELL_SECONDS):
            return  # a run is queued or busy: it will see these events
    except Exception:
        logger.warning("could not ring the event relay; the events will be redelivered", exc_info=True)
        return
    try:
        relay.delay()
    except Exception:
        logger.warning("could not queue the event relay; the events will be redelivered", exc_info=True)
        with contextlib.suppress(Exception):
            cache.delete(RELAY_DOORBELL)  # the next commit rings again


def events_relay(*, batch: int = RELAY_BATCH) -> list[int]:
    """Fan out every event not fanned out yet, oldest first; returns the ids of the deliveries to run. Silences the
    doorbell before it looks, so an event committed from then on rings for the next run."""
    cache.delete(RELAY_DOORBELL)
    to_run: list[int] = []
    while True:
        with transaction.atomic():
            events = list(
                Event.objects.select_for_update(skip_locked=True)
                .filter(fanned_out_at__isnull=True)
                .order_by("created_at")[:batch]
            )
            for event in events:
                to_run.extend(_fan_out(event))
        if len(events) < batch:
            return to_run


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

    transaction.on_commit(relay_ring if settings.EVENTS_RELAY else _enqueue)
    return ids


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff: 30 s, 1 min, 2 min, ... capped at 1 h."""
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def event_fan_out(*, event_id: UUID | str) -> list[int]:
    """Create the Delivery rows of an event (once) and return the ids of those still to run."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return []
    return _fan_out(event)


def _fan_out(event: Event) -> list[int]:
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
