"""The outbox: events written with the change, fanned out after commit, each handler at most once, never lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from events import registry
from events.models import Delivery, DeliveryState, Event
from events.services import delivery_run, event_fan_out, publish, stalled_work
from events.tasks import redeliver_stalled
from tests.helpers import race

pytestmark = pytest.mark.django_db

calls: list[tuple[str, str]] = []


@pytest.fixture(autouse=True)
def handlers():
    calls.clear()

    @registry.subscribe("ticket.*", name="test.recorder")
    def recorder(event: Event) -> None:
        calls.append(("recorder", event.type))

    @registry.subscribe("ticket.created", name="test.flaky")
    def flaky(event: Event) -> None:
        calls.append(("flaky", event.type))
        if event.payload.get("fail"):
            raise RuntimeError("downstream unavailable")

    yield
    registry.unsubscribe("test.recorder")
    registry.unsubscribe("test.flaky")


def test_handlers_run_after_commit_once_each(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = publish(acme, "ticket.created", {"number": 1042})
    assert calls == []  # nothing runs inside the transaction
    for callback in callbacks:
        callback()
    assert sorted(calls) == [("flaky", "ticket.created"), ("recorder", "ticket.created")]
    assert set(Delivery.objects.filter(event=event).values_list("state", flat=True)) == {DeliveryState.DONE}
    # Fanning out again, or re-running deliveries, does nothing more.
    for delivery_id in event_fan_out(event_id=event.id):
        delivery_run(delivery_id=delivery_id)
    assert redeliver_stalled() == 0
    assert len(calls) == 2


def test_rolled_back_transaction_publishes_nothing(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ZeroDivisionError), transaction.atomic():
        publish(acme, "ticket.created", {})
        1 / 0  # noqa: B018
    assert Event.objects.count() == 0
    assert calls == []


def test_failed_handler_is_retried_with_backoff_and_others_are_unaffected(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {"fail": True})
    flaky = Delivery.objects.get(event=event, handler="test.flaky")
    assert flaky.state == DeliveryState.FAILED
    assert "downstream unavailable" in flaky.last_error
    assert Delivery.objects.get(event=event, handler="test.recorder").state == DeliveryState.DONE
    # Not due yet: the sweeper leaves it alone.
    assert stalled_work() == ([], [])
    Event.objects.filter(pk=event.pk).update(payload={"fail": False})
    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        assert redeliver_stalled() == 1
    flaky.refresh_from_db()
    assert (flaky.state, flaky.attempts) == (DeliveryState.DONE, 2)


def test_event_whose_enqueue_was_lost_is_redelivered_by_the_sweeper(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the worker never heard of it
        publish(acme, "ticket.updated", {})
    assert stalled_work() == ([], [])  # within the grace period the normal path may still be on its way
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert redeliver_stalled() == 1
    assert calls == [("recorder", "ticket.updated")]


def test_delivery_claimed_by_a_dead_worker_is_taken_over(acme, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        event = publish(acme, "ticket.updated", {})
    [delivery_id] = event_fan_out(event_id=event.id)
    Delivery.objects.filter(pk=delivery_id).update(state=DeliveryState.RUNNING, claimed_at=timezone.now())
    assert delivery_run(delivery_id=delivery_id) == "skipped"  # someone holds it
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert delivery_run(delivery_id=delivery_id) == DeliveryState.DONE
    assert calls == [("recorder", "ticket.updated")]


def test_handler_gives_up_after_max_attempts(acme, django_capture_on_commit_callbacks):
    from events.services import MAX_ATTEMPTS

    with django_capture_on_commit_callbacks(execute=False):
        event = publish(acme, "ticket.created", {"fail": True})
    event_fan_out(event_id=event.id)
    delivery = Delivery.objects.get(event=event, handler="test.flaky")
    Delivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1)
    assert delivery_run(delivery_id=delivery.pk) == DeliveryState.DEAD


def test_broker_outage_does_not_fail_the_write(acme, monkeypatch, django_capture_on_commit_callbacks):
    from events import tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.fan_out, "delay", down)
    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {})
    assert Event.objects.filter(pk=event.pk, fanned_out_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_run_each_delivery_once(acme):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent claims need PostgreSQL")
    from tenancy.models import Organization

    org = Organization.objects.get(pk=acme.pk)
    with transaction.atomic():
        events = [publish(org, "ticket.updated", {"n": n}) for n in range(20)]
    ids: list[int] = []
    for event in events:
        ids.extend(event_fan_out(event_id=event.id))
    outcomes = race(lambda: [delivery_run(delivery_id=delivery_id) for delivery_id in ids], workers=4)
    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(calls) == 20
    assert Delivery.objects.filter(state=DeliveryState.DONE).count() == 20


def test_admin_retry_now_requeues_failed_deliveries_after_commit(acme, django_capture_on_commit_callbacks):
    from tests.factories import UserFactory
    from tests.helpers import admin_client

    with django_capture_on_commit_callbacks(execute=True):
        event = publish(acme, "ticket.created", {"fail": True})
    flaky = Delivery.objects.get(event=event, handler="test.flaky")
    assert flaky.state == DeliveryState.FAILED
    Event.objects.filter(pk=event.pk).update(payload={"fail": False})
    staff = UserFactory(email="ops@keel.test", is_staff=True, is_superuser=True)
    client = admin_client(staff)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        client.post("/admin/events/delivery/", {"action": "retry_now", "_selected_action": [str(flaky.pk)]})
    assert callbacks  # the enqueue waited for the commit
    flaky.refresh_from_db()
    assert flaky.state == DeliveryState.DONE


def test_publish_many_writes_in_one_insert_and_fans_out_after_commit(
    acme, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from events.services import publish_many

    with django_capture_on_commit_callbacks(execute=False) as callbacks, django_assert_num_queries(1):
        ids = publish_many([(acme, "ticket.sla_at_risk", {"n": n}) for n in range(3)])  # one INSERT
    assert len(ids) == 3 and len(callbacks) == 1
    stored = Event.objects.get(pk=ids[2])
    assert (stored.organization, stored.type, stored.payload) == (acme, "ticket.sla_at_risk", {"n": 2})
    assert calls == []
    callbacks[0]()  # one broker message fans out all three
    assert calls == [("recorder", "ticket.sla_at_risk")] * 3
    assert not Event.objects.filter(pk__in=ids, fanned_out_at__isnull=True).exists()
    assert publish_many([]) == []


def test_an_event_row_maintains_one_index_on_its_type():
    """Every event written updates each index of the table; the type needs only the b-tree the admin's filter uses,
    not PostgreSQL's extra LIKE-prefix index that ``db_index=True`` adds."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Event._meta.db_table)
    type_indexes = [name for name, info in constraints.items() if info["index"] and info["columns"] == ["type"]]
    assert type_indexes == ["events_event_type_369b1d2e"]
