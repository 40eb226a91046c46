"""Redis (the cache and the broker) or the database stops while the site serves: requests that need it answer 503
with ``Retry-After`` and a message a person can read (a page in the portal, ``{"detail": ...}`` for the API and the
webhooks), never a 500; ``/health`` names the failed check; nothing is half-written or lost; once the dependency is
back, everything answers again.

The site runs in this process (Django's test client) on a private ``redis-server`` that the test kills and starts
again on the same port, with production's arrangement: the cache (and with it the session cache and the API
throttles) in Redis, Celery's broker in Redis, tasks queued rather than run inline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from billing.models import StripeEvent, StripeEventStatus
from billing.signatures import sign
from events.models import Event
from events.services import FANOUT_GRACE
from events.tasks import redeliver_stalled
from msp.middleware import MESSAGE
from tests.faults.conftest import RedisServer, celery_broker
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

SCOPES = ("read", "write", "tickets:read", "tickets:write")
NEW_TICKET = {"subject": "Printer offline", "description": "Since this morning.", "priority": "P3"}


@pytest.fixture
def redis_site(redis_server: RedisServer, settings: Any) -> Iterator[RedisServer]:
    """The site with its cache and its broker in the private Redis."""
    settings.CACHES = {"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": redis_server.url}}
    with celery_broker(redis_server.url):
        yield redis_server


@pytest.fixture
def portal(redis_site, client_for, alice) -> Client:
    """Alice signed in, her session in the cache as well as the database (``cached_db``)."""
    return client_for(alice)


@pytest.fixture
def partner_api(api, api_key_for, acme):
    _, raw = api_key_for(organization=acme, scopes=SCOPES)
    return api(raw)


def stripe_delivery(client: Client, settings: Any) -> Any:
    """A signed Stripe event, POSTed as Stripe would."""
    body = json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "customer.updated",
                       "created": int(time.time()), "livemode": False,
                       "data": {"object": {"id": "cus_faults", "object": "customer"}}}).encode()  # fmt: skip
    signature = sign(body, settings.STRIPE_WEBHOOK_SECRET, int(time.time()))
    return client.post("/webhooks/stripe", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


def assert_unavailable_page(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response["Content-Type"].startswith("text/html")
    assert MESSAGE in response.content.decode()


def assert_unavailable_json(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {"detail": MESSAGE}


def test_while_redis_is_down_requests_answer_503_and_nothing_is_half_written(
    redis_site, portal, partner_api, settings, django_capture_on_commit_callbacks
):
    assert portal.get("/support/").status_code == 200
    assert partner_api.get("/api/tickets/").status_code == 200
    assert Client().get("/health").json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok"},
    }

    redis_site.kill()
    # The portal: the session is cached in Redis, and reading it fails before any view runs.
    assert_unavailable_page(portal.get("/support/"))
    assert_unavailable_page(portal.post("/support/new/", NEW_TICKET))
    # The API: its throttles count in Redis.
    assert_unavailable_json(partner_api.get("/api/tickets/"))
    assert_unavailable_json(partner_api.post("/api/tickets/", NEW_TICKET, format="json"))
    assert not Ticket.objects.exists()  # refused whole: nothing written
    health = Client().get("/health")
    assert health.status_code == 503
    assert health.json() == {"status": "fail", "checks": {"database": "ok", "cache": "fail", "broker": "fail"}}
    # A provider's webhook needs only the database: the event is kept, and its processing waits for the retry beat.
    with django_capture_on_commit_callbacks(execute=True):
        delivered = stripe_delivery(Client(), settings)
    assert delivered.status_code == 200
    assert StripeEvent.objects.get(event_id=delivered.json()["id"]).status == StripeEventStatus.PENDING

    redis_site.start()  # empty: whatever the cache held is gone
    assert portal.get("/support/").status_code == 200
    assert partner_api.post("/api/tickets/", NEW_TICKET, format="json").status_code == 201
    assert Ticket.objects.count() == 1
    health = Client().get("/health")
    assert (health.status_code, health.json()["status"]) == (200, "ok")


def queued_tasks(server: RedisServer) -> list[tuple[str, str]]:
    """The (task name, arguments) of the messages waiting in the broker's default queue."""
    messages = [json.loads(raw) for raw in server.client().lrange("celery", 0, -1)]
    return [(message["headers"]["task"], message["headers"]["argsrepr"]) for message in messages]


def test_a_ticket_opened_while_the_broker_is_down_is_kept_and_its_event_outboxed(
    redis_server, partner_api, django_capture_on_commit_callbacks
):
    with celery_broker(redis_server.url):
        redis_server.kill()
        with django_capture_on_commit_callbacks(execute=True):
            opened = partner_api.post("/api/tickets/", NEW_TICKET, format="json")
        assert opened.status_code == 201  # the cache is up (this process' memory): only the broker is down
        ticket = Ticket.objects.get()
        event = Event.objects.get(type="ticket.created")
        assert event.payload["id"] == str(ticket.pk)
        assert event.fanned_out_at is None  # its fan-out could not be queued: it waits in the outbox

        redis_server.start()
        with time_machine.travel(timezone.now() + FANOUT_GRACE + timedelta(seconds=1)):
            assert redeliver_stalled() == 1  # beat's sweep
        assert ("events.tasks.fan_out", repr((str(event.pk),))) in queued_tasks(redis_server)


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Every query fails as it does when the server cannot be reached (the test's own transaction is left alone)."""

    def refuse(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.lstrip().upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")):
            return execute(sql, params, many, context)
        raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')

    with connection.execute_wrapper(refuse):
        yield


def test_while_the_database_is_unreachable_requests_answer_503(client_for, alice, partner_api, settings):
    portal = client_for(alice)
    with database_unreachable():
        assert_unavailable_page(portal.get("/support/"))
        assert_unavailable_json(partner_api.get("/api/tickets/"))
        assert_unavailable_json(stripe_delivery(Client(), settings))
        health = Client().get("/health")
        assert health.status_code == 503
        assert health.json()["checks"]["database"] == "fail"
    assert portal.get("/support/").status_code == 200
    assert Client().get("/health").status_code == 200
