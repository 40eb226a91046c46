"""The ticket and invoice lists reuse an answer for the same caller and query for at most API_LIST_CACHE_SECONDS,
and never once the organization's data changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.connection
import time_machine
from django.core.cache import cache, caches
from django.db import connection
from django.db.models.deletion import Collector
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.services.invoices import invoice_create
from sms.models import Click
from tenancy.api_auth import ApiKeyRateThrottle
from tenancy.api_cache import _ReplaceOnCommit, version_key
from tests.helpers import local_redis_url
from tickets.models import Ticket
from tickets.services import ticket_create

SCOPES = ("read", "write", "tickets:read", "tickets:write", "billing:read")
TICKETS = "/api/tickets/"
INVOICES = "/api/invoices/"


def subjects(client: Any, path: str = TICKETS) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, response.content
    return [row["subject"] for row in response.json()["results"]]


def count_queries(client: Any, path: str) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    return response, len(captured.captured_queries)


@pytest.fixture
def acme_client(acme: Any, api: Any, api_key_for: Any) -> Any:
    return api(api_key_for(organization=acme, scopes=SCOPES)[1])


@pytest.mark.parametrize("path", [TICKETS, INVOICES])
def test_the_same_request_again_is_answered_from_the_cache_with_the_same_bytes(acme, alice, acme_client, path):
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    invoice_create(organization=acme, lines=[{"description": "Onsite", "quantity": "1", "unit_price": "150"}])
    first, built = count_queries(acme_client, path)
    again, reused = count_queries(acme_client, path)
    assert first.status_code == again.status_code == 200
    assert built > 0
    assert reused == 0
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert dict(again.headers) == dict(first.headers)


def test_a_ticket_opened_through_the_api_is_in_the_next_list(acme, acme_client):
    assert subjects(acme_client) == []
    assert (
        acme_client.post(TICKETS, {"subject": "VPN down", "description": "Since 9am."}, format="json").status_code
        == 201
    )
    assert subjects(acme_client) == ["VPN down"]


def test_any_saved_change_of_the_organization_is_in_the_next_list(acme, alice, acme_client):
    ticket = ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    assert subjects(acme_client) == ["Printer jammed"]
    ticket.subject = "Printer on fire"
    ticket.save()
    assert subjects(acme_client) == ["Printer on fire"]


def test_a_deletion_shows_once_the_reuse_time_passed(acme, alice, acme_client, settings):
    settings.API_LIST_CACHE_SECONDS = 1
    ticket = ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert subjects(acme_client) == ["Printer jammed"]
        ticket.delete()
        traveller.shift(timedelta(seconds=2))
        assert subjects(acme_client) == []


def test_rows_without_delete_receivers_of_their_own_are_still_deleted_in_bulk(db):
    # A receiver for every model's deletes would make Django load and signal each deleted row.
    assert Collector(using="default").can_fast_delete(Click.objects.all())


def test_a_change_without_signals_shows_once_the_reuse_time_passed(acme, alice, acme_client, settings):
    settings.API_LIST_CACHE_SECONDS = 1
    ticket = ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        assert subjects(acme_client) == ["Printer jammed"]
        Ticket.objects.filter(pk=ticket.pk).update(subject="Printer fixed")  # no signal: the answer may be reused
        assert subjects(acme_client) == ["Printer jammed"]
        traveller.shift(timedelta(seconds=2))
        assert subjects(acme_client) == ["Printer fixed"]


def test_another_organizations_change_keeps_the_answer(acme, globex, alice, acme_client):
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    assert subjects(acme_client) == ["Printer jammed"]
    ticket_create(organization=globex, subject="Globex only")
    _, reused = count_queries(acme_client, TICKETS)
    assert reused == 0


def test_answers_are_per_caller_and_per_organization(acme, globex, summit, alice, api, api_key_for):
    ticket_create(organization=acme, subject="Acme ticket", requester=alice)
    ticket_create(organization=globex, subject="Globex ticket")
    partner = api(api_key_for(partner=summit, scopes=SCOPES)[1], "acme")
    globex_client = api(api_key_for(organization=globex, scopes=SCOPES)[1])
    assert subjects(partner) == ["Acme ticket"]
    assert subjects(globex_client) == ["Globex ticket"]
    other_acme_key = api(api_key_for(organization=acme, scopes=SCOPES)[1])
    _, built = count_queries(other_acme_key, TICKETS)
    assert built > 0  # another key of the same organization builds its own answer
    assert api(api_key_for(partner=summit, scopes=SCOPES)[1], "globex").get(TICKETS).status_code == 404


def test_the_query_string_and_the_page_make_separate_answers(acme, alice, acme_client):
    for n in range(3):
        ticket_create(organization=acme, subject=f"Ticket {n}", requester=alice)
    assert len(subjects(acme_client, f"{TICKETS}?page_size=2")) == 2
    assert len(subjects(acme_client, f"{TICKETS}?page_size=2&page=2")) == 1
    assert len(subjects(acme_client)) == 3


def test_errors_and_partner_wide_lists_are_never_reused(acme, summit, alice, api, api_key_for, acme_client):
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    assert acme_client.get(f"{TICKETS}?page_size=0").status_code == 400
    assert acme_client.get(f"{TICKETS}?page_size=0").status_code == 400
    partner_wide = api(api_key_for(partner=summit, scopes=SCOPES)[1])
    assert partner_wide.get(TICKETS).status_code == 200
    _, built = count_queries(partner_wide, TICKETS)
    assert built > 0


def test_reuse_can_be_turned_off(acme, alice, acme_client, settings):
    settings.API_LIST_CACHE_SECONDS = 0
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    acme_client.get(TICKETS)
    _, built = count_queries(acme_client, TICKETS)
    assert built > 0


def test_a_transaction_replaces_the_version_at_once_and_once_more_on_commit(acme, globex, alice):
    cache.set(version_key(acme.pk), "before", None)
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)  # many rows of acme
    ticket_create(organization=globex, subject="Globex only")
    during = cache.get(version_key(acme.pk))
    assert during != "before"
    # The test's transaction has not committed: one replacement per organization waits for its commit.
    waiting = [entry[1] for entry in connection.run_on_commit if isinstance(entry[1], _ReplaceOnCommit)]
    assert sorted(str(callback.organization_id) for callback in waiting) == sorted([str(acme.pk), str(globex.pk)])
    next(callback for callback in waiting if callback.organization_id == acme.pk)()
    assert cache.get(version_key(acme.pk)) not in (None, "before", during)


def test_a_write_succeeds_while_the_cache_is_unreachable(acme, alice, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def unreachable(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(cache, "set", unreachable)
    ticket = ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    assert Ticket.objects.filter(pk=ticket.pk).exists()


# -- on Redis: authentication's round trip brings the answer along ---------------------------------------------------


@pytest.fixture
def redis_cache() -> Any:
    url = local_redis_url()
    if url is None:
        pytest.skip("needs Redis on localhost:6379")
    prefix = f"list-cache-test-{uuid.uuid4().hex}"  # keys of their own, whatever else uses the database
    with override_settings(
        CACHES={"default": {"BACKEND": "msp.cache.RedisCache", "LOCATION": url, "KEY_PREFIX": prefix}}
    ):
        yield
        client = caches["default"]._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


@pytest.fixture
def round_trips(monkeypatch: Any) -> list[bytes]:
    """Every command or pipeline sent to Redis, as sent."""
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> Any:
        sent.append(b"".join(command) if isinstance(command, list) else command)
        return original(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    return sent


@pytest.mark.parametrize("path", [TICKETS, INVOICES])
def test_a_reused_answer_takes_one_redis_round_trip_and_no_query(
    acme, alice, summit, api, api_key_for, redis_cache, round_trips, path
):
    ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    partner = api(api_key_for(partner=summit, scopes=SCOPES)[1], "acme")
    first = partner.get(path)
    assert first.status_code == 200
    round_trips.clear()
    again, queries = count_queries(partner, path)
    assert again.status_code == 200
    assert again.content == first.content
    assert queries == 0
    assert len(round_trips) == 1  # the key, its organization, its rate and the answer together


def test_a_change_between_requests_is_seen_on_redis(acme, alice, acme_client, redis_cache):
    ticket = ticket_create(organization=acme, subject="Printer jammed", requester=alice)
    assert subjects(acme_client) == ["Printer jammed"]
    assert subjects(acme_client) == ["Printer jammed"]
    ticket.subject = "Printer on fire"
    ticket.save()
    assert subjects(acme_client) == ["Printer on fire"]


def test_the_same_key_for_another_organization_gets_that_organizations_list(
    acme, initech, alice, summit, api, api_key_for, redis_cache
):
    ticket_create(organization=acme, subject="Acme ticket", requester=alice)
    ticket_create(organization=initech, subject="Initech ticket")
    raw = api_key_for(partner=summit, scopes=SCOPES)[1]
    assert subjects(api(raw, "acme")) == subjects(api(raw, "acme")) == ["Acme ticket"]
    assert subjects(api(raw, "initech")) == subjects(api(raw, "initech")) == ["Initech ticket"]
    assert subjects(api(raw, "acme")) == ["Acme ticket"]


def test_the_rate_is_counted_in_the_same_round_trip_and_still_refuses(
    acme, acme_client, redis_cache, round_trips, monkeypatch
):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min", "public": "60/min"})
    with time_machine.travel(datetime(2026, 3, 2, 8, 0, 10, tzinfo=UTC), tick=False):
        assert acme_client.get(TICKETS).status_code == 200  # an earlier minute
    round_trips.clear()
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC), tick=False):
        statuses = [acme_client.get(TICKETS).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    counted = [sent for sent in round_trips if b"$4\r\nINCR\r\n" in sent]
    assert len(counted) == 4
    assert all(b"MGET" in sent for sent in counted)  # each request counted along with the key's read
    assert sum(b"INCRBY" in sent for sent in round_trips) == 1  # the refused request taken back off
