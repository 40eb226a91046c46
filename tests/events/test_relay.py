"""The event relay: commits ring a doorbell in the shared cache, only a silent doorbell queues a relay run, and the
run fans out every event waiting, each once, however many runs there are."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from events import registry, tasks
from events.models import Delivery, DeliveryState, Event
from events.services import RELAY_DOORBELL, events_relay, publish, publish_many
from tests.helpers import race

calls: list[str] = []


@pytest.fixture(autouse=True)
def relay_on(settings: Any) -> Any:
    settings.EVENTS_RELAY = True
    calls.clear()

    @registry.subscribe("ticket.*", name="test.relay-recorder")
    def recorder(event: Event) -> None:
        calls.append(str(event.payload.get("n")))

    yield
    registry.unsubscribe("test.relay-recorder")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The relay runs queued (instead of run): one entry per message the broker would get."""
    runs: list[str] = []
    monkeypatch.setattr(tasks.relay, "delay", lambda: runs.append("relay"))
    return runs


@pytest.mark.django_db
def test_one_run_is_queued_for_events_committed_before_it_runs(acme, queued, django_capture_on_commit_callbacks):
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            publish(acme, "ticket.created", {"n": n})
    assert queued == ["relay"]  # the first commit rang; the others found the doorbell ringing
    assert calls == []
    delivery_ids = events_relay()
    for delivery_id in delivery_ids:
        tasks.run_delivery(delivery_id)
    assert sorted(calls) == ["0", "1", "2"]
    assert not Event.objects.filter(fanned_out_at__isnull=True).exists()
    # The run silenced the doorbell: the next commit queues the next run.
    with django_capture_on_commit_callbacks(execute=True):
        publish(acme, "ticket.created", {"n": 3})
    assert queued == ["relay", "relay"]


@pytest.mark.django_db
def test_a_batch_job_rings_once_and_the_relay_takes_its_events_in_batches(
    acme, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ids = publish_many([(acme, "ticket.updated", {"n": n}) for n in range(7)])
    assert queued == ["relay"]
    assert len(events_relay(batch=3)) == 7  # three batches: 3, 3, 1
    assert not Event.objects.filter(pk__in=ids, fanned_out_at__isnull=True).exists()
    assert events_relay(batch=3) == []  # nothing twice


@pytest.mark.django_db
def test_with_eager_tasks_the_handlers_run_after_commit(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {"n": 1})
    assert calls == ["1"]
    assert Delivery.objects.get(event=event, handler="test.relay-recorder").state == DeliveryState.DONE
    assert cache.get(RELAY_DOORBELL) is None


@pytest.mark.django_db
def test_a_broker_outage_silences_the_doorbell_and_keeps_the_event(
    acme, monkeypatch, django_capture_on_commit_callbacks
):
    def down() -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.relay, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {"n": 1})
    assert Event.objects.filter(pk=event.pk, fanned_out_at__isnull=True).exists()  # for redeliver_stalled
    assert cache.get(RELAY_DOORBELL) is None  # the next commit tries the broker again


@pytest.mark.django_db
def test_a_cache_outage_does_not_fail_the_write(acme, monkeypatch, queued, django_capture_on_commit_callbacks):
    def down(*args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "add", down)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {"n": 1})
    assert queued == []
    assert Event.objects.filter(pk=event.pk, fanned_out_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_fan_out_each_event_once(acme, queued):
    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED needs PostgreSQL")
    publish_many([(acme, "ticket.updated", {"n": n}) for n in range(300)])
    outcomes = race(lambda: events_relay(batch=20), workers=3)
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    delivery_ids = [delivery_id for outcome in outcomes for delivery_id in outcome]
    assert len(delivery_ids) == len(set(delivery_ids)) == 300  # every event's delivery handed out once
    assert Delivery.objects.count() == 300
    assert not Event.objects.filter(fanned_out_at__isnull=True).exists()
