"""Keeping the connection's tokens fresh: a token with less than five minutes left is refreshed before the call, a
401 refreshes once and repeats the call, the rotated refresh token is stored (encrypted), two workers refresh once,
and a refresh token Intuit no longer accepts marks the connection as needing reconnecting, which stops syncing."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from django.db import connection as db

from integrations.quickbooks.connection import books_for, token_refresh
from integrations.quickbooks.models import ConnectionStatus, QboConnection, QboSync, SyncKind, SyncState
from integrations.quickbooks.providers.base import ReconnectNeededError
from integrations.quickbooks.sync import sync_due_run, sync_run
from tenancy.crypto import decrypt
from tenancy.models import AuditEvent
from tests.helpers import race
from tests.integrations.quickbooks.conftest import ACCESS, API, NOW, REFRESH, TOKEN_URL, fault, token_reply

pytestmark = pytest.mark.django_db

CUSTOMER = {"Customer": {"Id": "58", "SyncToken": "0", "DisplayName": "Acme Pty Ltd"}}


def read_customer(connection: QboConnection) -> dict:
    books = books_for(connection)
    return books.provider.read(books.auth, "customer", "58")


def test_a_token_with_time_left_is_used_as_it_is(connection, intuit):
    intuit.get(f"{API}/customer/58", json=CUSTOMER)
    read_customer(connection)
    assert [call.request.url.split("?")[0] for call in intuit.calls] == [f"{API}/customer/58"]
    assert intuit.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS}"


def test_a_token_about_to_expire_is_refreshed_first_and_the_rotated_one_stored(connection, intuit, clock):
    clock.shift(timedelta(minutes=46))  # four minutes left
    intuit.post(TOKEN_URL, json=token_reply(access="access-2", refresh="refresh-2"))
    intuit.get(f"{API}/customer/58", json=CUSTOMER)
    read_customer(connection)
    refresh_call, api_call = intuit.calls
    assert parse_qs(refresh_call.request.body) == {"grant_type": ["refresh_token"], "refresh_token": [REFRESH]}
    assert api_call.request.headers["Authorization"] == "Bearer access-2"
    connection.refresh_from_db()
    assert decrypt(connection.refresh_token_encrypted) == "refresh-2"
    assert "refresh-2" not in connection.refresh_token_encrypted
    assert connection.access_expires_at == NOW + timedelta(minutes=46, hours=1)
    assert connection.refresh_expires_at == NOW + timedelta(minutes=46, seconds=8726400)


def test_a_refused_token_is_refreshed_and_the_call_repeated(connection, intuit):
    intuit.get(f"{API}/customer/58", status=401, json=fault("3200", "message=AuthenticationFailed", kind="AUTH"))
    intuit.post(TOKEN_URL, json=token_reply(access="access-2"))
    intuit.get(f"{API}/customer/58", json=CUSTOMER)
    assert read_customer(connection)["Id"] == "58"
    auth = [call.request.headers.get("Authorization") for call in intuit.calls]
    assert auth[0] == f"Bearer {ACCESS}" and auth[2] == "Bearer access-2"
    connection.refresh_from_db()
    assert decrypt(connection.access_token_encrypted) == "access-2"


def test_a_token_another_worker_already_replaced_is_not_refreshed_again(connection, intuit):
    assert token_refresh(connection_id=connection.pk, stale="a-token-from-before") == ACCESS
    assert not intuit.calls


def test_a_refresh_token_intuit_refuses_needs_reconnecting_and_stops_syncing(connection, acme, intuit, clock):
    clock.shift(timedelta(hours=2))  # the access token expired
    intuit.post(TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "Token invalid"})
    row = QboSync.objects.create(organization=acme, kind=SyncKind.CUSTOMER, object_id=str(acme.pk))
    assert sync_run(sync_id=row.pk) == "waiting"
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT
    assert "reconnecting" in connection.last_error
    assert AuditEvent.objects.filter(action="quickbooks.reconnect_needed").count() == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (SyncState.PENDING, 0)
    # Until staff reconnect, nothing is tried: no request is made at all.
    assert sync_due_run() == {"pushed": 0, "payments": 0}
    assert len(intuit.calls) == 1
    with pytest.raises(ReconnectNeededError):
        read_customer(connection)


@pytest.mark.django_db(transaction=True)
def test_two_workers_refresh_an_expiring_token_once(connection, intuit, clock):
    if db.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    clock.shift(timedelta(minutes=58))
    intuit.post(TOKEN_URL, json=token_reply(access="access-2", refresh="refresh-2"))
    tokens = race(lambda: token_refresh(connection_id=connection.pk))
    assert tokens == ["access-2", "access-2"]
    assert len(intuit.calls) == 1
